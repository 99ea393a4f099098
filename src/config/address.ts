/**
 * Listen addresses in Go's `[host]:port` form, as controller-runtime's bind-address flags take them.
 *
 * Guarantees: `:8080` means every interface (host ''), `127.0.0.1:0` and `[::1]:9090` name one
 * interface; port 0 asks the kernel for a free port (the server logs the one it got). The port is
 * an integer in 0..65535.
 *
 * Does not give: a way to disable a server. controller-runtime reads a bare `0` as "metrics
 * off"; here every server always runs (the health probes and metrics are part of the contract),
 * so a bare `0` is refused with a hint to use `:0`, instead of silently meaning something else.
 */

export interface BindAddress {
  /** '' = all interfaces; an IPv6 literal is kept without brackets. */
  readonly host: string;
  readonly port: number;
}

export type AddressResult = { ok: true; address: BindAddress } | { ok: false; reason: string };

const expected = 'expected [host]:port, e.g. ":8080" or "127.0.0.1:0"';

export function parseBindAddress(text: string): AddressResult {
  const fail = (reason: string): AddressResult => ({ ok: false, reason });
  const colon = text.lastIndexOf(':');
  if (colon < 0) {
    return /^\d+$/.test(text)
      ? fail(`${expected} (a server cannot be disabled; ":0" picks a free port)`)
      : fail(expected);
  }
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host.startsWith('[') || host.endsWith(']')) {
    if (!(host.startsWith('[') && host.endsWith(']')))
      return fail(`unbalanced brackets in host: ${expected}`);
    host = host.slice(1, -1);
  } else if (host.includes(':')) {
    return fail('an IPv6 host needs brackets, e.g. "[::1]:8080"');
  }
  if (/\s/.test(host)) return fail(`host contains whitespace: ${expected}`);
  if (!/^\d{1,5}$/.test(portText)) return fail(`port "${portText}" is not a number: ${expected}`);
  const port = Number(portText);
  if (port > 65535) return fail(`port ${port} is out of range 0-65535`);
  return { ok: true, address: { host, port } };
}

export function formatBindAddress(address: BindAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
