import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, used by
 * backend connections. Channel binding is not used ("n,,").
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private serverSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** client-first-message, sent in SASLInitialResponse. */
  first(): Buffer {
    return Buffer.from(`n,,n=*,r=${this.nonce}`);
  }

  private get firstBare(): string {
    return `n=*,r=${this.nonce}`;
  }

  /** Answers server-first-message with client-final-message. */
  final(serverFirst: string): Buffer {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (
      nonce === undefined ||
      !nonce.startsWith(this.nonce) ||
      salt === undefined ||
      !(iterations > 0)
    ) {
      throw new Error('SCRAM: malformed server-first-message');
    }
    const salted = pbkdf2Sync(
      this.password.normalize('NFKC'),
      Buffer.from(salt, 'base64'),
      iterations,
      32,
      'sha256',
    );
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++)
      proof[i] = (clientKey[i] as number) ^ (clientSignature[i] as number);
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Checks server-final-message: the server proves it knew the password too. */
  verify(serverFinal: string): void {
    const signature = parseAttributes(serverFinal).get('v');
    const expected = this.serverSignature;
    if (signature === undefined || expected === undefined)
      throw new Error('SCRAM: malformed server-final-message');
    const actual = Buffer.from(signature, 'base64');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new Error('SCRAM: the server signature does not match');
    }
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function parseAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) attrs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return attrs;
}

/** The md5 password answer: "md5" + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return `md5${createHash('md5')
    .update(Buffer.concat([Buffer.from(inner), salt]))
    .digest('hex')}`;
}
