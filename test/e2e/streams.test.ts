import { streamsSuite } from '../lib/streams-suite.js';

streamsSuite('runc');
