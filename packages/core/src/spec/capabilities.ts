/**
 * Capability sets, as moby's `oci/caps` computes them: names with or without
 * the CAP_ prefix, case-insensitive, "ALL" for every capability the kernel has.
 */
import { DEFAULT_CAPABILITIES, KNOWN_CAPABILITIES } from './defaults.js';
import { lastCapability } from './host.js';
import { invalidConfig } from './invalid.js';

/** Every capability the running kernel knows (what a privileged container gets). */
export function allCapabilities(): string[] {
  return KNOWN_CAPABILITIES.slice(0, lastCapability() + 1);
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
