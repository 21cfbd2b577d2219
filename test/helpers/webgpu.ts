/**
 * WebGPU tests run when E4E_TEST_WEBGPU=1 (CI sets it after installing Debian's chromium, whose SwiftShader is a CPU
 * Vulkan device: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json). Without it they are reported as
 * skipped with this reason, never passed silently.
 */
export const WEBGPU_SKIP: string | false =
  process.env['E4E_TEST_WEBGPU'] === '1'
    ? false
    : 'WebGPU tests need E4E_TEST_WEBGPU=1 and a Vulkan device (e.g. VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)';
