/** The driver contracts plugins implement. Types only: importing this runs nothing. */
export type * from './runtime.js';
export type * from './image.js';
export type * from './network.js';
