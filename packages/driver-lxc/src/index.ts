/** @isula/driver-lxc: under construction; see README.md. */
export {};
