/**
 * Capability sets, as moby's `oci/caps` computes them: names with or without
 * the CAP_ prefix, case-insensitive, "ALL" for every capability the kernel has.
 */
import { DEFAULT_CAPABILITIES, KNOWN_CAPABILITIES } from './defaults.js';
import { daemonBoundingCapabilities, lastCapability } from './host.js';
import { invalidConfig } from './invalid.js';

/**
 * Whether the daemon can hand out a capability: the kernel knows it and it
 * is in the daemon's own bounding set.
 */
export function isCapabilityAvailable(name: string, bounding = daemonBoundingCapabilities()): boolean {
  const bit = KNOWN_CAPABILITIES.indexOf(name);
  if (bit < 0 || bit > lastCapability()) return false;
  return bounding === undefined || ((bounding >> BigInt(bit)) & 1n) === 1n;
}

/**
 * Every capability the daemon can give (what a privileged container gets):
 * those the running kernel knows, within the daemon's bounding set.
 */
export function allCapabilities(): string[] {
  const bounding = daemonBoundingCapabilities();
  return KNOWN_CAPABILITIES.filter((c) => isCapabilityAvailable(c, bounding));
}

/** "net_admin" → "CAP_NET_ADMIN"; "all" → "ALL". Throws on an unknown name. */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!KNOWN_CAPABILITIES.includes(full)) throw invalidConfig(`unknown capability: "${name}"`);
  return full;
}

/**
 * The container's capabilities. Privileged: all. CapAdd "ALL": all but the
 * dropped ones. CapDrop "ALL": only the added ones. Otherwise the defaults
 * minus CapDrop plus CapAdd.
 */
export function computeCapabilities(capAdd: readonly string[], capDrop: readonly string[], privileged: boolean): string[] {
  if (privileged) return allCapabilities();
  const adds = capAdd.map(normalizeCapability);
  const drops = capDrop.map(normalizeCapability);
  let caps: string[];
  if (adds.includes('ALL')) {
    caps = allCapabilities().filter((c) => !drops.includes(c));
  } else if (drops.includes('ALL')) {
    caps = adds;
  } else {
    caps = [...DEFAULT_CAPABILITIES.filter((c) => !drops.includes(c)), ...adds];
  }
  return [...new Set(caps)];
}
