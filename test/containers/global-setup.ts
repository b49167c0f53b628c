import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import type { ContainerImages } from './container-stack.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/containers.sh', import.meta.url));

let images: ContainerImages | undefined;

/**
 * The container suite's setup: scripts/containers.sh prepare installs Docker's Debian packages
 * when missing, starts dockerd (host networking only) when none runs, and builds the worker and
 * stack images (base image cached by content).
 */
export function setup(project: TestProject): void {
  const output = execFileSync('bash', [SCRIPT, 'prepare'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60_000 });
  images = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as ContainerImages;
  project.provide('containerImages', images);
}

/** Stops the dockerd that setup started, if it started one. */
export function teardown(): void {
  if (images?.startedDockerd === true) execFileSync('bash', [SCRIPT, 'stop-dockerd'], { stdio: ['ignore', 'inherit', 'inherit'] });
}
