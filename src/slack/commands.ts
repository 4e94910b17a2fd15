// Parses the text of `/rdp …` into one command, or a mistake that says what to type instead.
import { parseDuration } from '../config/duration.ts';

export type Command =
  | { kind: 'open'; target: string; duration: string | null; reason: string }
  | { kind: 'ls' }
  | { kind: 'close'; id: string }
  | { kind: 'extend'; id: string; duration: string }
  | { kind: 'targets' }
  | { kind: 'link' }
  | { kind: 'unlink' }
  | { kind: 'help' };

export interface Mistake {
  mistake: 'UNKNOWN_SUBCOMMAND' | 'MISSING_TARGET' | 'INVALID_DURATION' | 'MISSING_REASON' | 'MISSING_ID' | 'MISSING_DURATION' | 'TOO_MANY_ARGUMENTS';
  message: string;
}

const DURATION_LIKE = /^(\d+[a-z][a-z0-9]*|PT[0-9HMS.]+)$/i;

/** `cmd` is the registered command (e.g. /rdp), used in the hints. */
export function parseCommand(text: string, cmd: string): Command | Mistake {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const sub = (words.shift() ?? 'help').toLowerCase();
  switch (sub) {
    case 'help':
      return { kind: 'help' };
    case 'ls':
    case 'list':
      return words.length ? tooMany(cmd, 'ls') : { kind: 'ls' };
    case 'targets':
      return words.length ? tooMany(cmd, 'targets') : { kind: 'targets' };
    case 'link':
      return words.length ? tooMany(cmd, 'link') : { kind: 'link' };
    case 'unlink':
      return words.length ? tooMany(cmd, 'unlink') : { kind: 'unlink' };
    case 'close': {
      if (words.length === 0) return { mistake: 'MISSING_ID', message: `Which grant? Type \`${cmd} close <id>\`; \`${cmd} ls\` lists yours.` };
      return words.length > 1 ? tooMany(cmd, 'close <id>') : { kind: 'close', id: words[0]! };
    }
    case 'extend': {
      if (words.length === 0) return { mistake: 'MISSING_ID', message: `Which grant? Type \`${cmd} extend <id> <duration>\`, e.g. \`${cmd} extend g_abc… 30m\`.` };
      if (words.length === 1) return { mistake: 'MISSING_DURATION', message: `How much longer? Type \`${cmd} extend ${words[0]} 30m\`.` };
      if (parseDuration(words[1]!) === undefined) return badDuration(cmd, words[1]!);
      return words.length > 2 ? tooMany(cmd, 'extend <id> <duration>') : { kind: 'extend', id: words[0]!, duration: words[1]! };
    }
    case 'open': {
      const target = words.shift();
      if (!target) return { mistake: 'MISSING_TARGET', message: `Which machine? Type \`${cmd} open <target> [duration] <reason…>\`; \`${cmd} targets\` lists them.` };
      let duration: string | null = null;
      if (words[0] !== undefined && DURATION_LIKE.test(words[0])) {
        if (parseDuration(words[0]) === undefined) return badDuration(cmd, words[0]);
        duration = words.shift()!;
      } else if (words[0] !== undefined && /^\d/.test(words[0]) && words.length === 1) {
        // "open pc 2hours" with nothing after it reads as a duration typed wrong, not as a reason.
        return badDuration(cmd, words[0]);
      }
      const reason = words.join(' ');
      if (!reason) return { mistake: 'MISSING_REASON', message: `Say why: type \`${cmd} open ${target} ${duration ?? '1h'} <reason>\`, e.g. a ticket number.` };
      return { kind: 'open', target, duration, reason };
    }
    default:
      return { mistake: 'UNKNOWN_SUBCOMMAND', message: `\`${cmd} ${sub.slice(0, 30)}\` is not a command. Type \`${cmd} help\` for the list, e.g. \`${cmd} open <target> 1h <reason>\`.` };
  }
}

function tooMany(cmd: string, usage: string): Mistake {
  return { mistake: 'TOO_MANY_ARGUMENTS', message: `Too many words: type \`${cmd} ${usage}\`.` };
}

function badDuration(cmd: string, text: string): Mistake {
  return { mistake: 'INVALID_DURATION', message: `\`${text.slice(0, 30)}\` is not a duration: write it like 30m, 2h or 1h30m (e.g. \`${cmd} open <target> 2h <reason>\`).` };
}

export function helpText(cmd: string): string {
  return [
    `*${cmd}* — just-in-time RDP access`,
    `• \`${cmd} open <target> [duration] <reason…>\` — ask for access; you get a link to confirm from the computer that will connect`,
    `• \`${cmd} ls\` — your grants`,
    `• \`${cmd} close <id>\` — close access now`,
    `• \`${cmd} extend <id> <duration>\` — more time, if policy allows`,
    `• \`${cmd} targets\` — the machines you may ask for`,
    `• \`${cmd} link\` / \`${cmd} unlink\` — connect this Slack user to your sign-in`,
  ].join('\n');
}
