// Waiting feedback: a spinner on a terminal, one plain line per change when stderr is a pipe or a file.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private label = '';
  private detail = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true && process.env.TERM !== 'dumb';
  }

  /** `label` is the stable part (a new one prints a new line off a TTY); `detail` changes freely (elapsed time). */
  update(label: string, detail = ''): void {
    const changed = label !== this.label;
    this.label = label;
    this.detail = detail;
    if (this.tty) {
      this.timer ??= setInterval(() => this.render(), 100);
      this.render();
    } else if (changed) {
      this.stream.write(`${label}\n`);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.label) this.stream.write('\r\x1b[2K');
    this.label = '';
  }

  private render(): void {
    this.frame = (this.frame + 1) % FRAMES.length;
    const text = `${FRAMES[this.frame]} ${this.label}${this.detail ? ` ${this.detail}` : ''}`;
    const width = this.stream.columns ? this.stream.columns - 1 : 200;
    this.stream.write(`\r\x1b[2K${text.slice(0, width)}`);
  }
}
