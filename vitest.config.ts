import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Stand-ins are shared per file; files run in parallel on separate ports.
          fileParallelism: true,
        },
      },
      {
        test: {
          name: 'containers',
          include: ['test/containers/**/*.test.ts'],
          environment: 'node',
          // Docker, the image build and the containers (scripts/containers.sh prepare); after the
          // other projects (groupOrder), so that their timing is not shared with image builds.
          globalSetup: ['test/containers/global-setup.ts'],
          sequence: { groupOrder: 1 },
          // testcontainers' reaper (Ryuk) is an image from a registry: off; the suite removes its containers.
          // The host is 127.0.0.1: dockerd runs with --bridge=none, so there is no bridge gateway to find it by.
          env: { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' },
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
