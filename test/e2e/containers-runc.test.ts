import { lifecycleSuite } from '../lib/lifecycle-suite.js';

lifecycleSuite('runc');
