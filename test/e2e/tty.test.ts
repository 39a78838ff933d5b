import { ttySuite } from '@isula/driver-tests';
import { REPO_IMAGES } from '../lib/containers.js';

ttySuite('runc', { ...REPO_IMAGES });
