// The CPU backend of ProcessGroup: a star over TCP (Node `net`). Rank 0 listens on masterAddr:masterPort,
// every other rank connects (retrying until rank 0 listens) and says hello {rank, worldSize}; rank 0
// checks the world size and that every rank joins once, then answers ready. Collectives go through
// rank 0: allReduceMean gathers every rank's bytes, sums them in rank order in float64 and sends the
// one result back, so every rank holds the same bits (deterministic, independent of arrival order).
// Frames: [u32 op][u32 seq][u32 byteLength][payload], little endian; `seq` numbers the collectives, so
// ranks that call different collectives (a bug) fail with a message naming both.
import { type Socket, connect, createServer } from 'node:net';
import { UserError } from '@latent-sft/core';
import type { ProcessGroup, RankInfo } from './group.js';

const MAGIC = 'latent-sft/distributed/1';
const OP = { hello: 1, ready: 2, error: 3, allReduceMean: 4, broadcast: 5, barrier: 6 } as const;
type OpName = keyof typeof OP;
const OP_NAME = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k])) as Record<number, OpName>;
const HEADER = 12;

interface Frame {
  op: number;
  seq: number;
  payload: Buffer;
}

/** One peer connection: frames in arrival order, awaited one at a time. */
class Channel {
  private chunks: Buffer[] = [];
  private have = 0;
  /** The header of the frame being received (null: waiting for one). */
  private head: { op: number; seq: number; len: number } | null = null;
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  closing = false;

  constructor(
    readonly socket: Socket,
    public peer: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.parse();
    });
    socket.on('error', (e) => this.fail(new UserError(`${this.peer}: connection error: ${e.message}`)));
    socket.on('close', () => this.fail(new UserError(`${this.peer} closed the connection (did that process fail? see its message)`)));
  }

  /** The next `n` received bytes (copied once when they span chunks). */
  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0] as Buffer;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }

  private parse(): void {
    for (;;) {
      if (this.head === null) {
        if (this.have < HEADER) return;
        const h = this.take(HEADER);
        this.head = { op: h.readUInt32LE(0), seq: h.readUInt32LE(4), len: h.readUInt32LE(8) };
      }
      if (this.have < this.head.len) return;
      const frame = { op: this.head.op, seq: this.head.seq, payload: this.head.len > 0 ? this.take(this.head.len) : Buffer.alloc(0) };
      this.head = null;
      if (this.waiter !== null) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(frame);
      } else this.frames.push(frame);
    }
  }

  private fail(e: Error): void {
    if (this.closing || this.failure !== null) return;
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  send(op: number, seq: number, payload: Uint8Array): void {
    const head = Buffer.alloc(HEADER);
    head.writeUInt32LE(op, 0);
    head.writeUInt32LE(seq, 4);
    head.writeUInt32LE(payload.byteLength, 8);
    this.socket.write(head);
    if (payload.byteLength > 0) this.socket.write(payload);
  }

  next(): Promise<Frame> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  close(): void {
    this.closing = true;
    this.socket.end();
  }
}

/** Options of the TCP rendezvous. */
export interface TcpGroupOptions extends Pick<RankInfo, 'rank' | 'worldSize' | 'masterAddr' | 'masterPort'> {
  /** How long rank 0 waits for every rank to join, and the others for rank 0 (default 300 s). */
  timeoutMs?: number;
}

/** Every array's bytes, in order, in one buffer (a copy: the caller may reuse the arrays at once). */
function pack(arrays: ReadonlyArray<ArrayBufferView>): Buffer {
  const out = Buffer.allocUnsafe(arrays.reduce((a, x) => a + x.byteLength, 0));
  let off = 0;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
    off += a.byteLength;
  }
  return out;
}

/** Copies `bytes` into the arrays in order (the reverse of pack). */
function unpack(bytes: Uint8Array, arrays: ReadonlyArray<ArrayBufferView>): void {
  let off = 0;
  for (const a of arrays) {
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(bytes.subarray(off, off + a.byteLength));
    off += a.byteLength;
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Joins the group at masterAddr:masterPort (rank 0 listens there); resolves once every rank has joined. */
export async function connectTcpGroup(o: TcpGroupOptions): Promise<ProcessGroup> {
  const { rank, worldSize } = o;
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new UserError(`distributed: bad rank ${rank} of world size ${worldSize}`);
  const timeoutMs = o.timeoutMs ?? 300_000;
  const where = `${o.masterAddr}:${o.masterPort}`;
  if (worldSize === 1) return new TcpGroup(0, 1, []);
  if (rank === 0) return new TcpGroup(0, worldSize, await acceptRanks(o, timeoutMs, where));
  return new TcpGroup(rank, worldSize, [await joinRank0(o, timeoutMs, where)]);
}

async function acceptRanks(o: TcpGroupOptions, timeoutMs: number, where: string): Promise<Channel[]> {
  const { worldSize } = o;
  const peers: Array<Channel | undefined> = new Array(worldSize).fill(undefined);
  const server = createServer();
  const pending = new Set<Channel>();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new UserError(
            `distributed: rank 0 cannot listen on ${where}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (another run? choose another --master-port)' : ''}`,
          ),
        ),
      );
      server.listen(o.masterPort, o.masterAddr, () => resolve());
    });
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (e?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => {
        const missing = peers.flatMap((p, r) => (r > 0 && p === undefined ? [r] : []));
        finish(
          new UserError(
            `distributed: rendezvous timed out after ${timeoutMs / 1000} s at ${where}: ${worldSize - 1 - missing.length} of ${worldSize - 1} ranks joined rank 0 (missing: ${missing.join(', ')})`,
          ),
        );
      }, timeoutMs);
      server.on('connection', (socket) => {
        const chan = new Channel(socket, 'a connecting process');
        pending.add(chan);
        chan.next().then(
          (f) => {
            pending.delete(chan);
            let hello: { magic?: unknown; rank?: unknown; worldSize?: unknown };
            try {
              hello = f.op === OP.hello ? (JSON.parse(f.payload.toString('utf8')) as typeof hello) : {};
            } catch {
              hello = {};
            }
            if (hello.magic !== MAGIC || typeof hello.rank !== 'number' || typeof hello.worldSize !== 'number') {
              chan.close(); // not one of ours: ignore it
              return;
            }
            const r = hello.rank;
            let err: string | null = null;
            if (hello.worldSize !== worldSize) err = `world size mismatch: rank 0 has ${worldSize}, rank ${r} has ${hello.worldSize}`;
            else if (!Number.isInteger(r) || r < 1 || r >= worldSize) err = `rank ${r} is outside world size ${worldSize}`;
            else if (peers[r] !== undefined) err = `rank ${r} joined twice`;
            if (err !== null) {
              chan.send(OP.error, 0, Buffer.from(`distributed: ${err}`));
              chan.close();
              finish(new UserError(`distributed: ${err} (at ${where})`));
              return;
            }
            chan.peer = `rank ${r}`;
            peers[r] = chan;
            if (peers.filter((p) => p !== undefined).length === worldSize - 1) finish();
          },
          () => pending.delete(chan),
        );
      });
    });
  } catch (e) {
    for (const c of [...pending, ...peers]) c?.socket.destroy();
    throw e;
  } finally {
    server.close(); // stops accepting; the joined connections stay open
  }
  for (const c of pending) c.socket.destroy();
  const list = peers.slice(1) as Channel[];
  for (const c of list) c.send(OP.ready, 0, Buffer.alloc(0));
  return list;
}

async function joinRank0(o: TcpGroupOptions, timeoutMs: number, where: string): Promise<Channel> {
  const deadline = Date.now() + timeoutMs;
  const timedOut = () => new UserError(`distributed: rank ${o.rank} found no rendezvous at ${where} within ${timeoutMs / 1000} s (is rank 0 running there?)`);
  for (;;) {
    const socket = await new Promise<Socket | null>((resolve) => {
      const s = connect(o.masterPort, o.masterAddr);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', () => {
        s.destroy();
        resolve(null);
      });
    });
    if (socket !== null) {
      const chan = new Channel(socket, 'rank 0');
      chan.send(OP.hello, 0, Buffer.from(JSON.stringify({ magic: MAGIC, rank: o.rank, worldSize: o.worldSize })));
      let timer: NodeJS.Timeout | undefined;
      const reply = await Promise.race([
        chan.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timedOut()), Math.max(1, deadline - Date.now()));
        }),
      ]).finally(() => clearTimeout(timer));
      if (reply.op === OP.error) throw new UserError(reply.payload.toString('utf8'));
      if (reply.op !== OP.ready) throw new UserError(`distributed: unexpected reply from rank 0 at ${where} (op ${reply.op})`);
      return chan;
    }
    if (Date.now() >= deadline) throw timedOut();
    await delay(200);
  }
}

class TcpGroup implements ProcessGroup {
  private seq = 0;
  private busy = false;
  private closed = false;

  constructor(
    readonly rank: number,
    readonly worldSize: number,
    /** rank 0: the channels of ranks 1..N-1 (index r-1); others: [the channel to rank 0]. */
    private readonly peers: Channel[],
  ) {}

  /** Runs one collective; a failure is told to the other ranks (rank 0) before it is thrown. */
  private async run<T>(name: OpName, body: (seq: number) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`distributed: ${name} on a closed group`);
    if (this.busy) throw new Error(`distributed: ${name} while another collective runs (await each one)`);
    this.busy = true;
    const seq = ++this.seq;
    try {
      return await body(seq);
    } catch (e) {
      if (this.rank === 0) for (const c of this.peers) c.send(OP.error, seq, Buffer.from((e as Error).message));
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /** The next frame from `chan`, which must be collective `name` number `seq` (`what`: which part, for errors). */
  private async expect(chan: Channel, name: OpName, seq: number, bytes?: number, what = ''): Promise<Buffer> {
    const f = await chan.next();
    if (f.op === OP.error) throw new UserError(f.payload.toString('utf8'));
    const mine = `rank ${this.rank} is in ${name} #${seq}`;
    if (f.op !== OP[name] || f.seq !== seq)
      throw new UserError(`distributed: collectives out of step: ${mine}, ${chan.peer} sent ${OP_NAME[f.op] ?? f.op} #${f.seq}`);
    if (bytes !== undefined && f.payload.byteLength !== bytes)
      throw new UserError(
        `distributed: ${name} #${seq}${what}: ${chan.peer} sent ${f.payload.byteLength} bytes, rank ${this.rank} has ${bytes} (the ranks disagree on the tensors)`,
      );
    return f.payload;
  }

  allReduceMean(arrays: ReadonlyArray<Float32Array | Float64Array>): Promise<void> {
    // The array count, then one frame per array each way (no buffer of everything: Node caps a Buffer at 4 GiB).
    return this.run('allReduceMean', async (seq) => {
      if (this.worldSize === 1) return;
      const what = (i: number) => (arrays.length > 1 ? ` (array ${i} of ${arrays.length})` : '');
      const count = pack([Uint32Array.of(arrays.length)]);
      if (this.rank !== 0) {
        const chan = this.peers[0] as Channel;
        chan.send(OP.allReduceMean, seq, count);
        for (const a of arrays) chan.send(OP.allReduceMean, seq, pack([a]));
        await this.expect(chan, 'allReduceMean', seq, 4);
        for (const [i, a] of arrays.entries()) unpack(await this.expect(chan, 'allReduceMean', seq, a.byteLength, what(i)), [a]);
        return;
      }
      for (const chan of this.peers) {
        const n = (await this.expect(chan, 'allReduceMean', seq, 4)).readUInt32LE(0);
        if (n !== arrays.length)
          throw new UserError(
            `distributed: allReduceMean #${seq}: ${chan.peer} passed ${n} arrays, rank 0 has ${arrays.length} (the ranks disagree on the tensors)`,
          );
      }
      for (const chan of this.peers) chan.send(OP.allReduceMean, seq, count);
      for (const [i, a] of arrays.entries()) {
        const sum = Float64Array.from(a);
        const tmp = a instanceof Float64Array ? new Float64Array(a.length) : new Float32Array(a.length);
        for (const chan of this.peers) {
          unpack(await this.expect(chan, 'allReduceMean', seq, a.byteLength, what(i)), [tmp]);
          for (let j = 0; j < sum.length; j++) sum[j] = (sum[j] as number) + (tmp[j] as number);
        }
        for (let j = 0; j < a.length; j++) a[j] = (sum[j] as number) / this.worldSize;
        const out = pack([a]);
        for (const chan of this.peers) chan.send(OP.allReduceMean, seq, out);
      }
    });
  }

  broadcast(data: Uint8Array | null, root = 0): Promise<Uint8Array> {
    return this.run('broadcast', async (seq) => {
      if (!Number.isInteger(root) || root < 0 || root >= this.worldSize)
        throw new Error(`distributed: broadcast root ${root} outside world size ${this.worldSize}`);
      if ((this.rank === root) !== (data !== null)) throw new Error(`distributed: broadcast: the root (rank ${root}) passes the bytes, the others null`);
      if (this.worldSize === 1) return data as Uint8Array;
      if (this.rank !== 0) {
        const chan = this.peers[0] as Channel;
        if (this.rank === root) {
          chan.send(OP.broadcast, seq, data as Uint8Array);
          return data as Uint8Array;
        }
        return new Uint8Array(await this.expect(chan, 'broadcast', seq));
      }
      const bytes = root === 0 ? (data as Uint8Array) : await this.expect(this.peers[root - 1] as Channel, 'broadcast', seq);
      this.peers.forEach((c, i) => {
        if (i + 1 !== root) c.send(OP.broadcast, seq, bytes);
      });
      return new Uint8Array(bytes);
    });
  }

  barrier(): Promise<void> {
    return this.run('barrier', async (seq) => {
      if (this.worldSize === 1) return;
      if (this.rank !== 0) {
        const chan = this.peers[0] as Channel;
        chan.send(OP.barrier, seq, Buffer.alloc(0));
        await this.expect(chan, 'barrier', seq, 0);
        return;
      }
      for (const c of this.peers) await this.expect(c, 'barrier', seq, 0);
      for (const c of this.peers) c.send(OP.barrier, seq, Buffer.alloc(0));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.peers) c.close();
  }
}
