// Registers the client commands (the technician's side of the JSON API) on the `portcullis` program.
import type { Command } from 'commander';
import { exitCodeHelpText } from '../../errors.ts';
import { registerApprovalCommands } from './approvals.ts';
import { registerAuditExportCommand } from './audit-export.ts';
import { registerGrantCommands } from './grants.ts';
import { registerLoginCommands } from './login.ts';
import { registerOpenCommand } from './open.ts';
import { registerTargetsCommand } from './targets.ts';

export function registerClientCommands(program: Command): void {
  registerLoginCommands(program);
  registerTargetsCommand(program);
  registerOpenCommand(program);
  registerGrantCommands(program);
  registerApprovalCommands(program);
  registerAuditExportCommand(program);
  program.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  portcullis login --server https://portcullis.example.com',
      '  portcullis targets',
      '  portcullis open acme-dc01 --for 1h --reason "T-4411" --wait --rdp-file acme-dc01.rdp',
      '  portcullis ls',
      '  portcullis close g_4f9cQ2…',
      '  portcullis --help open          (every command has examples)',
      '',
      'Profiles: --profile NAME or PORTCULLIS_PROFILE, one per broker; stored in $XDG_CONFIG_HOME/portcullis (~/.config/portcullis).',
      '',
      exitCodeHelpText(),
      '',
    ].join('\n'),
  );
}
