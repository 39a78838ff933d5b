import { lifecycleSuite } from '@isula/driver-tests';
import { REPO_IMAGES } from '../lib/containers.js';

lifecycleSuite('runc', { ...REPO_IMAGES });
