// No secret value in any infra/ file or deployment doc: secrets are references (${NAME}, secretKeyRef, Secrets Manager ARNs).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/broker.ts';
import { filesUnder, INFRA, read, rel } from './helpers.ts';

// Shapes of real credentials: AWS key ids, private keys, Slack tokens, JWTs, connection strings with a password.
const CREDENTIAL = [
  /\b(AKIA|ASIA)[0-9A-Z]{16}\b/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\bxox[abposr]-[0-9A-Za-z-]{10,}/,
  /\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\./,
  /\b[a-z]+:\/\/[^\s:/@]+:[^\s@${}]+@/,
];
// `secret: value`, `PASSWORD=value`, `password = "value"`: the value must be a reference or a placeholder.
const ASSIGNMENT = /\b([A-Za-z_]*(?:secret|password|passwd|token)[A-Za-z_]*)["']?\s*[:=]\s*["']?(\$\$?\{[^}]*\}|[^"'\s,}#]+)/gi;
// What may stand there: an environment reference (${NAME}, ${NAME:?why}, Terraform's escaped $${NAME}), a Terraform
// expression (local., var., aws_…), a placeholder (<…>, …, $NAME), a Kubernetes key name, or YAML/HCL syntax.
const REFERENCE = /^(\$\$?\{[A-Za-z_][A-Za-z0-9_]*(:[?-][^}]*)?\}|\$\{(var|local|aws_[a-z_]+|data)\.[^}]+\}|(local|var|aws_[a-z_]+)\.[a-z_.[\]0-9]+|<[^>]+>|…\)?|"?\$[A-Z_]+"?|true|false|\[\]?|\{|\(|:|[a-z]+(-[a-z]+)+|valueFrom|secretKeyRef|GetSecretValue)$/;

function scan(file: string): string[] {
  const found: string[] = [];
  read(file).split('\n').forEach((line, i) => {
    for (const re of CREDENTIAL) if (re.test(line)) found.push(`${rel(file)}:${i + 1}: looks like a credential`);
    for (const m of line.matchAll(ASSIGNMENT)) {
      if (/description|_arn$|Arn$|secret_arn|secretKeyRef|SecretId|signingSecret$/i.test(m[1]!)) continue;
      if (!REFERENCE.test(m[2]!)) found.push(`${rel(file)}:${i + 1}: ${m[1]} = ${m[2]}`);
    }
  });
  return found;
}

describe('no secret values', () => {
  it('in infra/ or docs/deploy.md: every secret is a reference', () => {
    const files = [...filesUnder(INFRA), join(ROOT, 'docs/deploy.md')];
    assert.deepEqual(files.flatMap(scan), []);
  });

  it('the scanner finds planted secrets (it can fail)', () => {
    const planted = [
      'secret: hunter2-but-longer',
      'password = "correct horse battery"',
      'OIDC_WEB_SECRET=abc123def456',
      'url: postgres://portcullis:s3cret@db:5432/p',
      'aws_access_key_id = AKIAABCDEFGHIJKLMNOP',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-secrets-'));
    try {
      for (const [i, p] of planted.entries()) {
        const f = join(dir, `f${i}`);
        writeFileSync(f, `${p}\n`);
        assert.ok(scan(f).length > 0, `not found: ${p}`);
      }
      const f = join(dir, 'ok');
      writeFileSync(f, 'secret: "${OIDC_WEB_SECRET}"\nPGPASSWORD: ${PGPASSWORD:?set PGPASSWORD in .env}\n');
      assert.deepEqual(scan(f), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
