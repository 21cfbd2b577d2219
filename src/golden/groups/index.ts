/** The group implementations, by group name. */
import type { GroupRunner } from '../runner.js';
import { runTextGroup } from './text.js';
import { runSchedulerGroup } from './scheduler.js';
import { runVaeGroup } from './vae.js';
import { runE4EGroup, runUNetGroup } from './unet.js';
import { runInversionGroup } from './inversion.js';
import { runTransferGroup } from './transfer.js';
import { runNonsquareGroup } from './nonsquare.js';
import { runImagesGroup } from './images.js';
import { runSamhqGroup } from './samhq.js';

export const GROUP_RUNNERS: Readonly<Record<string, GroupRunner>> = {
  text: runTextGroup,
  scheduler: runSchedulerGroup,
  vae: runVaeGroup,
  unet_plain: runUNetGroup,
  unet_freeu: runUNetGroup,
  unet_e4e: runE4EGroup,
  unet_e4e_match: runE4EGroup,
  unet_e4e_structcopy: runE4EGroup,
  unet_e4e_match_masked: runE4EGroup,
  unet_e4e_vswap: runE4EGroup,
  inversion: runInversionGroup,
  transfer: runTransferGroup,
  nonsquare: runNonsquareGroup,
  images: runImagesGroup,
  samhq: runSamhqGroup,
};
