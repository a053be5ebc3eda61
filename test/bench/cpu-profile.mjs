// A CPU profile of a whole process, for processes started through NODE_OPTIONS (which refuses
// --cpu-prof): `NODE_OPTIONS="--import /abs/path/cpu-profile.mjs" FLANSTREAM_CPU_PROFILE_DIR=DIR`.
// Profiles from load to exit through the inspector and writes DIR/<pid>.cpuprofile on exit
// (process.exit or a normal end; a process killed by a signal writes nothing).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.FLANSTREAM_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // A session of the process's own main thread answers synchronously.
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
