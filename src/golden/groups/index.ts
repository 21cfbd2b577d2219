/** The group implementations, by group name. */
import type { GroupRunner } from '../runner.js';
import { runTextGroup } from './text.js';
import { runSchedulerGroup } from './scheduler.js';
import { runVaeGroup } from './vae.js';

export const GROUP_RUNNERS: Readonly<Record<string, GroupRunner>> = {
  text: runTextGroup,
  scheduler: runSchedulerGroup,
  vae: runVaeGroup,
};
