// `portcullis serve`: runs the broker until SIGINT/SIGTERM; SIGHUP reloads the policies.
import type { Command } from 'commander';
import type { Portcullis } from '../app.ts';
import { loadConfig } from '../config/load.ts';
import { isPortcullisError } from '../errors.ts';
import { createLogger, errorFields } from '../log.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the broker (with no config: SQLite under ./data, the development IdP, simulated firewalls)')
    .option('-c, --config <path>', 'YAML config file (default: $PORTCULLIS_CONFIG, else the embedded default)')
    .action(async (opts: { config?: string }) => {
      const log = createLogger();
      const config = loadConfig({ path: opts.config ?? process.env.PORTCULLIS_CONFIG });
      // Loaded here, not at the top: client commands should not pay for the server's start-up.
      const { createPortcullis } = await import('../app.ts');
      const app = await createPortcullis(config, { log });
      const { url, issuer, banner: idpLines } = await app.start();
      process.stdout.write(banner(app, url, issuer, idpLines));
      log.info('listening', { url });

      process.on('SIGHUP', () => {
        try {
          const r = app.policy.reload();
          log.info('policies reloaded', { generation: r.generation, policies: r.policies });
        } catch (e) {
          log.error('policy reload failed; the previous set stays in force', errorFields(e));
        }
      });
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info('stopping', { signal });
        await app.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}

function banner(app: Portcullis, url: string, issuer: string, idpLines: string[]): string {
  const c = app.config;
  const lines = [
    '',
    `Portcullis is listening on ${url}`,
    `  store:    ${c.store.url.startsWith('sqlite:') ? c.store.url : 'postgres (' + app.store.dialect + ')'}`,
    `  policies: ${c.policy.dir} (${app.policy.describe().length} policies)`,
    `  issuer:   ${issuer}${c.dev.embeddedIdp ? '   <- DEVELOPMENT IdP with demo users; never use in production' : ''}`,
    `  targets:`,
  ];
  for (const t of c.targets) {
    const fw = app.firewalls.get(t.id)!;
    lines.push(`    ${t.id.padEnd(16)} ${fw.scope}${fw.simulated ? '   <- SIMULATED firewall: no real port is opened' : ''}`);
  }
  if ([...app.firewalls.values()].some((f) => f.simulated)) {
    lines.push('', '  *** SIMULATED FIREWALL: rules are recorded, not enforced. Configure aws-security-group or nftables targets for real access. ***');
  }
  if (idpLines.length) lines.push('', ...idpLines.map((l) => `  ${l}`));
  lines.push('', `  health: ${url}/healthz   readiness: ${url}/readyz   metrics: ${url}/metrics`, '');
  return `${lines.join('\n')}\n`;
}

export function reportFatal(e: unknown): never {
  if (isPortcullisError(e)) process.stderr.write(`portcullis: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`portcullis: ${JSON.stringify(errorFields(e))}\n`);
  process.exit(isPortcullisError(e, 'CONFIG_INVALID') || isPortcullisError(e, 'POLICY_INVALID') ? 78 : 1);
}
