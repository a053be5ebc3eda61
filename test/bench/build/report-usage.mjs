// Preloaded into a build process by build-memory-bench.ts (`node --import <this>`): when the process
// exits, appends its peak RSS and CPU seconds as a JSON line to $FLANSTREAM_USAGE_FILE. It lets the
// bench measure any source tree's CLI (a baseline commit included) the same way.
import { appendFileSync } from 'node:fs';

const file = process.env.FLANSTREAM_USAGE_FILE;
const t0 = performance.now();
if (file)
  process.on('exit', () => {
    const u = process.resourceUsage();
    appendFileSync(
      file,
      `${JSON.stringify({ peakMB: u.maxRSS / 1024, cpu: (u.userCPUTime + u.systemCPUTime) / 1e6, wall: (performance.now() - t0) / 1000 })}\n`,
    );
  });
