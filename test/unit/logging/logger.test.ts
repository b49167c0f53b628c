import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logging/index.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON line per event with the correlation ids', () => {
    const out = capture();
    const logger = createLogger({ name: 'sign', destination: out.stream });
    logger.info({ endToEndId: 'E9999900420261128163000abcdefghijk', sagaId: 's-1' }, 'message signed');
    const [line] = out.lines();
    expect(line).toMatchObject({ name: 'sign', msg: 'message signed', endToEndId: 'E9999900420261128163000abcdefghijk', sagaId: 's-1', level: 30 });
  });

  it('redacts PINs, keys and personal data wherever they appear', () => {
    const out = capture();
    const logger = createLogger({ name: 'hsm', destination: out.stream });
    logger.info(
      {
        pin: '1234', hsm: { soPin: '5678', userPin: '9999' }, privateKey: '-----BEGIN', debtor: { cpf: '12345678901', name: 'Fulano de Tal' }, cnpj: '00038166000105',
        worker: { hsm: { pin: '4321' } }, transport: { tls: { privateKeyIdentifier: 'pkcs11:object=k;pin-value=8765' } },
      },
      'configured',
    );
    const text = JSON.stringify(out.lines());
    for (const secret of ['1234', '5678', '9999', 'BEGIN', '12345678901', 'Fulano', '00038166000105', '4321', '8765']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[REDACTED]');
  });
});
