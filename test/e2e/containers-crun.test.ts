import { lifecycleSuite } from '@isula/driver-tests';
import { crunUsable, REPO_IMAGES } from '../lib/containers.js';

// crun 1.8 needs hugetlb bound to cgroup v1 on hybrid hosts; scripts/setup.sh test does it.
// Under CI the suite must run: a host that cannot is a failure, not a skip.
const usable = await crunUsable();
if (!usable.ok && process.env['CI'] === 'true') throw new Error(`crun cannot run here: ${usable.reason}`);
lifecycleSuite('crun', { skip: usable.ok ? false : usable.reason, ...REPO_IMAGES });
