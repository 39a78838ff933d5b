/** @isula/driver-kata: under construction; see README.md. */
export {};
