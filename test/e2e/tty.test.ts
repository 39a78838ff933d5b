import { ttySuite } from '../lib/tty-suite.js';

ttySuite('runc');
