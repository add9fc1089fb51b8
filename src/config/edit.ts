/**
 * Edits a value inside JSON text in place, so that a change made through the API keeps the
 * file's layout, key order and spacing: only the characters of the edited value change.
 */

/** A value in JSON text: where it starts and ends, and for objects and arrays, what it holds. */
interface Node {
  start: number;
  end: number;
  members?: { key: string; value: Node }[];
  items?: Node[];
}

class Scanner {
  private at = 0;

  constructor(private readonly text: string) {}

  parse(): Node {
    const node = this.value();
    this.space();
    if (this.at !== this.text.length) this.fail('unexpected text after the value');
    return node;
  }

  private value(): Node {
    this.space();
    const start = this.at;
    const char = this.text[this.at];
    if (char === '{') return this.object(start);
    if (char === '[') return this.array(start);
    if (char === '"') {
      this.string();
      return { start, end: this.at };
    }
    const match = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(this.text.slice(this.at));
    if (!match) this.fail('expected a value');
    this.at += match![0].length;
    return { start, end: this.at };
  }

  private object(start: number): Node {
    this.at += 1;
    const members: { key: string; value: Node }[] = [];
    this.space();
    if (this.text[this.at] === '}') return { start, end: ++this.at, members };
    for (;;) {
      this.space();
      const key = this.string();
      this.space();
      this.expect(':');
      members.push({ key, value: this.value() });
      this.space();
      if (this.text[this.at] === '}') return { start, end: ++this.at, members };
      this.expect(',');
    }
  }

  private array(start: number): Node {
    this.at += 1;
    const items: Node[] = [];
    this.space();
    if (this.text[this.at] === ']') return { start, end: ++this.at, items };
    for (;;) {
      items.push(this.value());
      this.space();
      if (this.text[this.at] === ']') return { start, end: ++this.at, items };
      this.expect(',');
    }
  }

  private string(): string {
    const start = this.at;
    this.expect('"');
    while (this.at < this.text.length && this.text[this.at] !== '"')
      this.at += this.text[this.at] === '\\' ? 2 : 1;
    this.expect('"');
    return JSON.parse(this.text.slice(start, this.at)) as string;
  }

  private space(): void {
    while (/\s/.test(this.text[this.at] ?? '')) this.at += 1;
  }

  private expect(char: string): void {
    if (this.text[this.at] !== char) this.fail(`expected "${char}"`);
    this.at += 1;
  }

  private fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.at}`);
  }
}

/**
 * Returns `text` with the weight of queue `name` set to `weight`: the number replaced where the
 * queue has one, else `"weight": N` added after the queue's last member.
 */
export function setQueueWeightInText(text: string, name: string, weight: number): string {
  const root = new Scanner(text).parse();
  const queues = root.members?.find((member) => member.key === 'queues')?.value;
  const queue = queues?.items?.find((item) =>
    item.members?.some(
      (m) => m.key === 'name' && text.slice(m.value.start, m.value.end) === JSON.stringify(name),
    ),
  );
  if (!queue?.members) throw new Error(`the file has no queue named "${name}"`);
  const existing = queue.members.find((member) => member.key === 'weight')?.value;
  const number = JSON.stringify(weight);
  if (existing) return text.slice(0, existing.start) + number + text.slice(existing.end);
  const last = queue.members[queue.members.length - 1]!.value;
  return `${text.slice(0, last.end)}, "weight": ${number}${text.slice(last.end)}`;
}
