import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preflightProblem, type PreflightInfo } from '../src/runner.js';

/** /info of a daemon with image-oci, driver-runc and network-cni loaded, as core answers it. */
const INFO: PreflightInfo = {
  IsulaPlugins: [{ Name: '@isula/image-oci' }, { Name: '@isula/driver-runc' }, { Name: '@isula/network-cni' }],
  Runtimes: { runc: {}, crun: {} },
  ImageFormats: ['oci'],
  Plugins: { Network: ['cni'] },
};

test('the preflight passes a daemon that loads the plugins, claims the runtime and registers the image format and network driver', () => {
  assert.equal(preflightProblem({ plugins: ['@isula/network-cni'], networkDriver: 'cni', imageFormat: 'oci' }, INFO), undefined);
  assert.equal(preflightProblem({ plugins: ['@isula/driver-runc'], runtime: 'crun' }, INFO), undefined);
});

test('the preflight fails naming the runtime no plugin claims, and the runtimes isulad has', () => {
  assert.equal(preflightProblem({ plugins: ['@isula/driver-runc'], runtime: 'sandbox' }, INFO), 'no plugin claims the runtime "sandbox" (isulad has: runc, crun)');
  assert.equal(preflightProblem({ plugins: ['@isula/driver-runc'], runtime: 'sandbox' }, { ...INFO, Runtimes: {} }), 'no plugin claims the runtime "sandbox" (isulad has: none)');
  // Without --runtime the containers run under runc: it must be claimed too.
  assert.match(preflightProblem({ plugins: ['@isula/network-cni'], networkDriver: 'cni' }, { ...INFO, Runtimes: { crun: {} } }) ?? '', /the runtime "runc" \(isulad has: crun\)/);
});

test('the preflight reads the network drivers from Plugins.Network, not from the networking feature\'s text', () => {
  const textOnly: PreflightInfo = { ...INFO, Plugins: { Network: [] } };
  (textOnly as Record<string, unknown>)['IsulaFeatures'] = [{ Name: 'networking', Enabled: true, Detail: 'cni' }];
  assert.equal(preflightProblem({ plugins: ['@isula/network-cni'], networkDriver: 'cni' }, textOnly), 'no plugin registers the network driver "cni" (isulad has: none)');
  assert.equal(preflightProblem({ plugins: ['@isula/network-cni'], networkDriver: 'mynet' }, { ...INFO, Plugins: { Network: ['cni', 'other'] } }), 'no plugin registers the network driver "mynet" (isulad has: cni, other)');
  assert.equal(preflightProblem({ plugins: ['@isula/network-cni'], networkDriver: 'cni' }, { ...INFO, Plugins: { Network: null } }), 'no plugin registers the network driver "cni" (isulad has: none)', "Docker's null is no driver");
});

test('the preflight names a plugin isulad does not list before anything it would register', () => {
  assert.match(preflightProblem({ plugins: ['isula-driver-sandbox'], runtime: 'sandbox' }, INFO) ?? '', /^isulad started but does not list isula-driver-sandbox among its plugins/);
  assert.equal(preflightProblem({ plugins: ['@isula/image-oci'], imageFormat: 'myfmt' }, INFO), 'no plugin registers the image format "myfmt" (isulad has: oci)');
});
