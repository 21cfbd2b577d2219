/**
 * A restricted pickle VM (protocols 2 to 5, https://github.com/python/cpython/blob/3.11/Lib/pickletools.py) that
 * only builds data: numbers, strings, bytes, tuples, lists, dicts, sets. Globals are checked against the caller's
 * allow-list the moment they are read; calls (REDUCE) and persistent ids go to the caller's hooks, which build host
 * objects from allowed globals only. Opcodes that construct arbitrary objects (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*,
 * out-of-band buffers) are refused, so nothing in a pickle can ever run code.
 */
import { TorchCheckpointError } from '../errors.js';

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export type PyKey = string | number | bigint | boolean | null;

export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** The state given by BUILD (an OrderedDict's `__dict__`, e.g. a state_dict's `_metadata`). */
  state: PyValue | undefined;
}

export class PySet {
  readonly items: PyValue[] = [];
}

/** A global the allow-list let through (module and qualified name as in the pickle). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Host objects made by the hooks are opaque to the VM. */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PySet | PyGlobal | { readonly host: unknown };

export interface PickleHooks {
  /** The file and the entry name, for messages: `<file>: refusing to load: <entry> references global ...`. */
  readonly file: string;
  readonly entry: string;
  allowGlobal(module: string, name: string): boolean;
  /** REDUCE of an allowed global; return undefined to refuse the call. */
  call(fn: PyGlobal, args: PyTuple): PyValue | undefined;
  /** BINPERSID. */
  persistentLoad(pid: PyValue): PyValue;
}

/** Opcodes refused outright, with what they do. */
const REFUSED: Readonly<Record<number, string>> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

function describe(value: PyValue): string {
  if (value instanceof PyGlobal) return `'${value.qualified}'`;
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof PyTuple) return 'a tuple';
  if (value instanceof PyDict) return 'a dict';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)}`;
}

function isKey(value: PyValue): value is PyKey {
  return value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
}

/** Run the pickle in `data` and return its result. */
export function unpickle(data: Uint8Array, hooks: PickleHooks): PyValue {
  return new Machine(data, hooks).run();
}

class Machine {
  private pos = 0;
  private opAt = 0;
  private stack: PyValue[] = [];
  private readonly marks: PyValue[][] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly hooks: PickleHooks,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private invalid(reason: string): TorchCheckpointError {
    return new TorchCheckpointError(`${this.hooks.file}: ${this.hooks.entry} is not a valid pickle: ${reason} (opcode at byte ${this.opAt})`);
  }

  private refuse(reason: string): TorchCheckpointError {
    return new TorchCheckpointError(`${this.hooks.file}: refusing to load: ${this.hooks.entry} ${reason}`, {
      hint: 'eye4eye reads only weights-only checkpoints (a state_dict of tensors); a pickle asking for anything else could run code',
    });
  }

  private take(n: number): Uint8Array {
    if (this.pos + n > this.data.length) throw this.invalid(`it ends at byte ${this.data.length}, inside an opcode that needs ${n} more bytes`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(): number {
    return this.take(1)[0]!;
  }

  private u16(): number {
    this.take(2);
    return this.view.getUint16(this.pos - 2, true);
  }

  private u32(): number {
    this.take(4);
    return this.view.getUint32(this.pos - 4, true);
  }

  private u64(): number {
    this.take(8);
    const v = this.view.getBigUint64(this.pos - 8, true);
    if (v > BigInt(this.data.length)) throw this.invalid(`length ${v} is larger than the pickle`);
    return Number(v);
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw this.invalid('a GLOBAL name has no terminating newline');
    const text = Buffer.from(this.data.subarray(this.pos, end)).toString('utf8');
    this.pos = end + 1;
    return text;
  }

  private utf8(n: number): string {
    return Buffer.from(this.take(n)).toString('utf8');
  }

  private pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined) throw this.invalid('stack underflow (or a pop past a MARK)');
    return v;
  }

  private top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined) throw this.invalid('stack underflow (or a pop past a MARK)');
    return v;
  }

  private popMark(): PyValue[] {
    const items = this.stack;
    const outer = this.marks.pop();
    if (outer === undefined) throw this.invalid('no MARK to pop to');
    this.stack = outer;
    return items;
  }

  private long(bytes: Uint8Array): number | bigint {
    let v = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    if (bytes.length > 0 && (bytes[bytes.length - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * bytes.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private global(module: string, name: string): PyGlobal {
    if (!this.hooks.allowGlobal(module, name)) {
      throw this.refuse(`references global '${module}.${name}' (only tensor-rebuilding globals are allowed)`);
    }
    return new PyGlobal(module, name);
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (!(target instanceof PyDict)) throw this.invalid(`SETITEM(S) on ${describe(target)}, not a dict`);
    if (items.length % 2 !== 0) throw this.invalid('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (!isKey(key)) throw this.invalid(`dict key of unsupported type (${describe(key)})`);
      target.map.set(key, items[i + 1]!);
    }
  }

  private append(target: PyValue, items: PyValue[]): void {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof PySet) target.items.push(...items);
    else throw this.invalid(`APPEND(S)/ADDITEMS on ${describe(target)}`);
  }

  private reduce(): void {
    const args = this.pop();
    const fn = this.pop();
    if (!(args instanceof PyTuple)) throw this.invalid(`REDUCE arguments are ${describe(args)}, not a tuple`);
    const result = fn instanceof PyGlobal ? this.hooks.call(fn, args) : undefined;
    if (result === undefined) throw this.refuse(`calls ${describe(fn)} (REDUCE at byte ${this.opAt}), which is not a tensor-rebuilding function`);
    this.stack.push(result);
  }

  private build(): void {
    const state = this.pop();
    const target = this.top();
    if (!(target instanceof PyDict)) throw this.refuse(`sets the state of ${describe(target)} (BUILD at byte ${this.opAt}); only dicts may get a state`);
    target.state = state;
  }

  run(): PyValue {
    for (;;) {
      this.opAt = this.pos;
      if (this.pos >= this.data.length) throw this.invalid(`it ends at byte ${this.data.length} without a STOP opcode`);
      const op = this.u8();
      if (op === 0x2e) return this.pop(); // STOP
      this.step(op);
    }
  }

  private step(op: number): void {
    const refused = REFUSED[op];
    if (refused !== undefined) {
      throw this.refuse(`uses opcode ${refused} (0x${op.toString(16)}) at byte ${this.opAt}, which builds arbitrary objects`);
    }
    const push = (v: PyValue): void => void this.stack.push(v);
    switch (op) {
      case 0x80: // PROTO
        if (this.u8() > 5) throw this.invalid('pickle protocol above 5');
        return;
      case 0x95: // FRAME: framing is only a hint for buffered readers
        this.u64();
        return;
      case 0x28: // MARK
        this.marks.push(this.stack);
        this.stack = [];
        return;
      case 0x30: // POP
        if (this.stack.pop() === undefined) throw this.invalid('stack underflow');
        return;
      case 0x31: // POP_MARK
        this.popMark();
        return;
      case 0x32: // DUP
        return push(this.top());
      case 0x4e: // NONE
        return push(null);
      case 0x88: // NEWTRUE
        return push(true);
      case 0x89: // NEWFALSE
        return push(false);
      case 0x4a: // BININT
        this.take(4);
        return push(this.view.getInt32(this.pos - 4, true));
      case 0x4b: // BININT1
        return push(this.u8());
      case 0x4d: // BININT2
        return push(this.u16());
      case 0x8a: // LONG1
        return push(this.long(this.take(this.u8())));
      case 0x8b: // LONG4
        return push(this.long(this.take(this.u32())));
      case 0x47: // BINFLOAT (big-endian)
        this.take(8);
        return push(this.view.getFloat64(this.pos - 8, false));
      case 0x58: // BINUNICODE
        return push(this.utf8(this.u32()));
      case 0x8c: // SHORT_BINUNICODE
        return push(this.utf8(this.u8()));
      case 0x8d: // BINUNICODE8
        return push(this.utf8(this.u64()));
      case 0x55: // SHORT_BINSTRING (py2 str, read as latin-1 text)
        return push(Buffer.from(this.take(this.u8())).toString('latin1'));
      case 0x54: // BINSTRING
        return push(Buffer.from(this.take(this.u32())).toString('latin1'));
      case 0x43: // SHORT_BINBYTES
        return push(Uint8Array.from(this.take(this.u8())));
      case 0x42: // BINBYTES
        return push(Uint8Array.from(this.take(this.u32())));
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        return push(Uint8Array.from(this.take(this.u64())));
      case 0x29: // EMPTY_TUPLE
        return push(new PyTuple([]));
      case 0x74: // TUPLE
        return push(new PyTuple(this.popMark()));
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(this.pop());
        return push(new PyTuple(items));
      }
      case 0x5d: // EMPTY_LIST
        return push([]);
      case 0x6c: // LIST
        return push(this.popMark());
      case 0x61: {
        // APPEND
        const item = this.pop();
        return this.append(this.top(), [item]);
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = this.popMark();
        return this.append(this.top(), items);
      }
      case 0x7d: // EMPTY_DICT
        return push(new PyDict());
      case 0x64: {
        // DICT
        const dict = new PyDict();
        this.setItems(dict, this.popMark());
        return push(dict);
      }
      case 0x73: {
        // SETITEM
        const value = this.pop();
        const key = this.pop();
        return this.setItems(this.top(), [key, value]);
      }
      case 0x75: {
        // SETITEMS
        const items = this.popMark();
        return this.setItems(this.top(), items);
      }
      case 0x8f: // EMPTY_SET
        return push(new PySet());
      case 0x91: {
        // FROZENSET
        const set = new PySet();
        set.items.push(...this.popMark());
        return push(set);
      }
      case 0x71: // BINPUT
        this.memo.set(this.u8(), this.top());
        return;
      case 0x72: // LONG_BINPUT
        this.memo.set(this.u32(), this.top());
        return;
      case 0x94: // MEMOIZE
        this.memo.set(this.memo.size, this.top());
        return;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? this.u8() : this.u32();
        const value = this.memo.get(index);
        if (value === undefined) throw this.invalid(`memo entry ${index} was never stored`);
        return push(value);
      }
      case 0x63: {
        // GLOBAL
        const module = this.line();
        return push(this.global(module, this.line()));
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw this.invalid('STACK_GLOBAL needs two strings');
        return push(this.global(module, name));
      }
      case 0x52: // REDUCE
        return this.reduce();
      case 0x62: // BUILD
        return this.build();
      case 0x51: // BINPERSID
        return push(this.hooks.persistentLoad(this.pop()));
      default:
        throw this.invalid(`unknown or unsupported opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
