// The `portcullis` command: one commander program; each command group registers itself.
import { Command } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerServeCommand, reportFatal } from './serve.ts';
import { registerPolicyCommands } from './policy.ts';
import { registerExposureCommand } from './exposure.ts';
import { registerClientCommands } from './client/index.ts';
import { registerMigrateCommand } from './migrate.ts';
import { registerSweepCommand } from './sweep.ts';
import { registerAttemptsCommand } from './attempts.ts';

const program = new Command('portcullis')
  .description('Just-in-time port opening: RDP stays closed until one person, from one address, needs it.')
  .version('0.1.0')
  .showHelpAfterError();

registerServeCommand(program);
registerAuditCommands(program);
registerPolicyCommands(program);
registerExposureCommand(program);
registerClientCommands(program);
registerMigrateCommand(program);
registerSweepCommand(program);
registerAttemptsCommand(program);
// After the groups register, so it covers only program-level mistakes (an unknown command): exit 2, as documented.
program.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));

program.parseAsync(process.argv).catch(reportFatal);
