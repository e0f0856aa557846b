// One redis-server for a test file (started before its tests, stopped by its pid after them), and
// control planes on it: each test gets its own task, so its own keys; every plane opened is closed.
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { ControlPlane } from '@shoal/scaleout';
import { startRedisServer, type RedisServer } from '@shoal/testkit';

/** Registers the hooks; `plane()` opens a connected plane on the current test's task. */
export function redisPlanes(prefix: string): { plane(): Promise<ControlPlane> } {
  let redis: RedisServer;
  const planes: ControlPlane[] = [];
  let taskNumber = 0;
  let task = '';
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const plane of planes) plane.close();
    await redis.kill();
  });
  beforeEach(() => {
    task = `${prefix}-${++taskNumber}`;
  });
  return {
    async plane() {
      const opened = new ControlPlane(redis.url, task);
      await opened.connect();
      planes.push(opened);
      return opened;
    },
  };
}
