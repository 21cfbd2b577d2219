// Draws the example inputs (512x512 PNGs) with sharp from SVG: a simple bird in two colour schemes and poses,
// plus their object masks (white = bird). Run from the repository root: node examples/make-examples.mjs
import sharp from 'sharp';
import { fileURLToPath } from 'node:url';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));

function bird({ body, wing, belly, beak, head = body, sky, ground, flip = false, dy = 0, mask = false }) {
  const fill = (c) => (mask ? '#fff' : c);
  const shape = `
    <g transform="${flip ? 'translate(512,0) scale(-1,1)' : ''} translate(0,${dy})">
      <polygon points="120,250 40,210 55,290" fill="${fill(wing)}"/>
      <ellipse cx="230" cy="270" rx="120" ry="80" fill="${fill(body)}"/>
      <ellipse cx="250" cy="300" rx="80" ry="45" fill="${fill(belly)}"/>
      <path d="M170,250 Q240,190 300,260 Q240,290 170,250 Z" fill="${fill(wing)}"/>
      <circle cx="345" cy="190" r="58" fill="${fill(head)}"/>
      <polygon points="395,175 460,195 395,210" fill="${fill(beak)}"/>
      ${mask ? '' : '<circle cx="360" cy="178" r="9" fill="#111"/><circle cx="363" cy="175" r="3" fill="#fff"/>'}
      <rect x="215" y="340" width="8" height="55" fill="${fill(beak)}"/>
      <rect x="255" y="340" width="8" height="55" fill="${fill(beak)}"/>
    </g>`;
  const background = mask ? '<rect width="512" height="512" fill="#000"/>'
    : `<rect width="512" height="512" fill="${sky}"/><rect y="395" width="512" height="117" fill="${ground}"/>
       <rect x="0" y="390" width="512" height="10" fill="#6b4a2b"/>`;
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512">${background}${shape}</svg>`);
}

const structure = { body: '#3d6fd1', wing: '#1f3f8f', belly: '#e8eef8', beak: '#f2b233', sky: '#cfe6f5', ground: '#7fae5a' };
const appearance = { body: '#d8442c', wing: '#7a1f12', belly: '#f7d36b', beak: '#3a3a3a', head: '#f28c28', sky: '#f4e7cf', ground: '#c9a46b', flip: true, dy: 30 };

const write = (svg, name) => sharp(svg).png({ compressionLevel: 9, palette: true }).toFile(here(name));
await write(bird(structure), 'bird-blue.png');
await write(bird({ ...structure, mask: true }), 'bird-blue-mask.png');
await write(bird(appearance), 'bird-red.png');
await write(bird({ ...appearance, mask: true }), 'bird-red-mask.png');
