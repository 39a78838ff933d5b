/** @isula/cri: under construction; see README.md. */
export {};
