// Credentials this process has read, so that no error or log line it prints can carry one by accident.

const secrets = new Set<string>();

export function rememberSecret(value: string): void {
  // Short strings would redact ordinary words; tokens are long.
  if (value.length >= 16) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
