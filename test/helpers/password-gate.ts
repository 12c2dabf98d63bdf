import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { type Socket, connect, createServer } from 'node:net';
import type { TestDatabase } from './database.js';

/**
 * Password authentication in front of a PostgreSQL server that trusts loopback connections.
 *
 * The test server's pg_hba.conf trusts 127.0.0.1, so it never asks for a password and can never
 * answer 28P01. The gate listens on its own loopback port and does what the server does for a
 * `password` line of pg_hba.conf: it asks the client for the password, checks it against the
 * role's SCRAM-SHA-256 verifier in pg_authid (as the server would: the same PBKDF2 and HMAC
 * steps), and on a mismatch answers with the server's own FATAL 28P01 "password authentication
 * failed for user ..." and closes. On a match it opens a connection to the real server, replays
 * the client's startup message and from then on only relays bytes, so every query runs on the
 * real server. `ALTER ROLE ... PASSWORD` on the real server is what rotates the password.
 */
export interface PasswordGate {
  port: number;
  /** Password checks that failed, and that passed. */
  refused(): number;
  admitted(): number;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** Whether `password` matches the role's stored SCRAM-SHA-256 verifier. */
function matchesVerifier(verifier: string, password: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!match) return false;
  const [, iterations, salt, storedKey] = match;
  const salted = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(salt!, 'base64'), Number(iterations), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const computed = createHash('sha256').update(clientKey).digest();
  const stored = Buffer.from(storedKey!, 'base64');
  return stored.length === computed.length && timingSafeEqual(stored, computed);
}

function errorResponse(fields: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(fields).map(([code, value]) => Buffer.from(`${code}${value}\0`, 'utf8')),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Reads whole messages off a socket: the first ones have no type byte, later ones do. */
class MessageReader {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  private async take(length: number): Promise<Buffer> {
    while (this.buffer.length < length) {
      if (this.closed) throw new Error('password gate: the client went away');
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
    const taken = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return taken;
  }

  /** A startup-phase message: Int32 length (itself included), then the rest. */
  async untyped(): Promise<Buffer> {
    const header = await this.take(4);
    return Buffer.concat([header, await this.take(header.readInt32BE(0) - 4)]);
  }

  /** A regular message: type byte, Int32 length, body. */
  async typed(): Promise<{ type: string; body: Buffer }> {
    const header = await this.take(5);
    return { type: header.toString('latin1', 0, 1), body: await this.take(header.readInt32BE(1) - 4) };
  }

  /** Whatever arrived beyond the messages read so far, and no more reading. */
  rest(): Buffer {
    this.socket.removeAllListeners('data');
    return this.buffer;
  }
}

export async function startPasswordGate(t: TestDatabase, upstream: { host: string; port: number }): Promise<PasswordGate> {
  let refused = 0;
  let admitted = 0;
  const sockets = new Set<Socket>();

  async function serve(client: Socket): Promise<void> {
    const reader = new MessageReader(client);
    let startup = await reader.untyped();
    while ([SSL_REQUEST, GSSENC_REQUEST].includes(startup.readInt32BE(4))) {
      client.write('N');
      startup = await reader.untyped();
    }
    if (startup.readInt32BE(4) === CANCEL_REQUEST) {
      client.end();
      return;
    }
    const pairs = startup.subarray(8).toString('utf8').split('\0');
    const user = pairs[pairs.indexOf('user') + 1] ?? '';

    // AuthenticationCleartextPassword, then the client's PasswordMessage.
    client.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
    const message = await reader.typed();
    const password = message.type === 'p' ? message.body.toString('utf8').replace(/\0$/, '') : '';
    const [role] = await t.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
    if (!role?.rolpassword || !matchesVerifier(role.rolpassword, password)) {
      refused += 1;
      client.end(
        errorResponse({
          S: 'FATAL',
          V: 'FATAL',
          C: '28P01',
          M: `password authentication failed for user "${user}"`,
          R: 'auth_failed',
        }),
      );
      return;
    }
    admitted += 1;
    const server = connect(upstream.port, upstream.host);
    sockets.add(server);
    server.on('close', () => sockets.delete(server));
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
    server.write(startup);
    const early = reader.rest();
    if (early.length > 0) server.write(early);
    server.pipe(client);
    client.pipe(server);
  }

  const gate = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    serve(client).catch(() => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    gate.once('error', reject);
    gate.listen(0, '127.0.0.1', resolve);
  });
  const address = gate.address();
  if (typeof address !== 'object' || !address) throw new Error('test fixture: the password gate has no port');
  return {
    port: address.port,
    refused: () => refused,
    admitted: () => admitted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        gate.close(() => resolve());
      }),
  };
}
