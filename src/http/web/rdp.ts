// A Remote Desktop connection file (.rdp) for a grant: the address only, never credentials.

/**
 * `connect` comes from the admin's config ("host" or "host:port"); the grant's port wins when the
 * target lists no port in `connect`. Control characters are dropped so a value cannot add lines.
 */
export function rdpFile(connect: string, port: number): string {
  const clean = connect.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  const hasPort = /^\[[^\]]+\]:\d+$/.test(clean) || /^[^:]+:\d+$/.test(clean);
  const address = hasPort || port === 3389 ? clean : `${clean}:${port}`;
  // CRLF line ends: mstsc reads either, but some clients (older Remmina) want CRLF.
  return ['full address:s:' + address, 'prompt for credentials:i:1', 'administrative session:i:0', 'screen mode id:i:2', ''].join('\r\n');
}

/** A filename that is safe in Content-Disposition on every platform. */
export function rdpFilename(targetId: string): string {
  return `${targetId.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 60) || 'target'}.rdp`;
}
