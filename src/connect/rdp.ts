// The one Remote Desktop connection file (.rdp) generator, served by the web download and written by the CLI.

/** Thrown when a configured host cannot be put into an .rdp file; each transport maps it to its own error. */
export class RdpAddressError extends Error {
  readonly code = 'RDP_BAD_HOST';
}

/**
 * host and port to connect to: the host of the target's `connect` ("host", "host:port", "[v6]:port" or a
 * bare IPv6 address) with the grant's port, which may differ from the one written in `connect`.
 */
export function connectEndpoint(connect: string | null | undefined, port: number): { host: string; port: number; address: string } | undefined {
  if (!connect) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(connect) ?? /^([^:]+)(?::\d+)?$/.exec(connect);
  // A bare IPv6 address has colons but no brackets.
  const host = m ? m[1]! : connect.includes(':') ? connect : undefined;
  if (!host) return undefined;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { host, port, address: `${shown}:${port}` };
}

/**
 * The file text: the address and safe client settings, never credentials. Anything but a host name or an
 * address is refused, because a newline would let it add settings (e.g. drive redirection) to the file.
 */
export function rdpFileText(host: string, port: number): string {
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(host) && !/^[0-9A-Fa-f:.]{2,45}$/.test(host)) {
    throw new RdpAddressError(`the target's host "${host.slice(0, 60).replace(/[\u0000-\u001f\u007f]/g, '?')}" cannot go into an .rdp file`);
  }
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const lines = [
    `full address:s:${address}`,
    `alternate full address:s:${address}`,
    'prompt for credentials:i:1',
    'administrative session:i:0',
    'screen mode id:i:2',
    'use multimon:i:0',
    'authentication level:i:2',
    'enablecredsspsupport:i:1',
    'autoreconnection enabled:i:1',
    'redirectclipboard:i:1',
    // Nothing of the user's machine is handed to the remote server unless they choose so in the client.
    'redirectdrives:i:0',
    'redirectprinters:i:0',
    'redirectsmartcards:i:0',
  ];
  // mstsc writes CRLF; every client reads it.
  return `${lines.join('\r\n')}\r\n`;
}

/** A filename that is safe in Content-Disposition on every platform. */
export function rdpFilename(targetId: string): string {
  return `${targetId.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 60) || 'target'}.rdp`;
}
