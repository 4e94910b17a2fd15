// Fast entry for the client commands (bin/portcullis.js routes login, open, ls, … here): it loads only the CLI and the
// OIDC client, not the broker (express, Cedar, the AWS SDK, oidc-provider) that `serve` needs. A technician types these often.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerClientCommands } from './index.ts';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('portcullis')
  .description('Just-in-time port opening: RDP stays closed until one person, from one address, needs it.')
  .version(version)
  .showHelpAfterError();

registerClientCommands(program);
program.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`portcullis: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
