import { streamsSuite } from '@isula/driver-tests';
import { REPO_IMAGES } from '../lib/containers.js';

streamsSuite('runc', { ...REPO_IMAGES });
