import { PermanentError } from '../../shared/errors/index.ts';
import { decodeEchoReceived, decodeInboundPaymentDecided } from '../../shared/events/index.ts';
import type { EchoReceivedData, InboundPaymentDecidedData } from '../../shared/events/index.ts';
import { PAYMENT_PRIORITIES, PURPOSE_CODES } from '../../shared/iso20022/index.ts';
import type { CreditTransfer, PaymentReturn, ServiceLevel } from '../../shared/iso20022/index.ts';
import { DICT_OPERATIONS } from '../../shared/dict/index.ts';
import { OUTCOME_QUERY_REQUESTED, decodeOutcomeQueryRequested } from '../../shared/bcb-query/index.ts';
import type { OutcomeQueryRequestedData } from '../../shared/bcb-query/index.ts';
import type { DictObject, DictOperation } from '../../shared/dict/index.ts';

/**
 * `PaymentRequested` data, version 1: core banking asks selo to send one pacs.008 with one
 * credit transfer, or one pacs.004 returning (part of) a payment it received. selo fills in the
 * header (sender = its ISPB, receiver = the SPI), the MsgId and the creation times.
 */
export type PaymentRequestedData =
  | {
      message: 'pacs.008';
      /** The transfer; its `endToEndId` must equal the event's `endToEndId`; `purpose` (`Purp/Cd`) is required. */
      transaction: Omit<CreditTransfer, 'debtorAgentIspb'>;
      /**
       * `GrpHdr/PmtTpInf/SvcLvl/Prtry`: `PAGPRI` (instant, `InstrPrty` HIGH), `PAGAGD` (scheduled)
       * or `PAGFRD` (held for fraud analysis), both NORM. @defaultValue `'PAGPRI'`
       */
      serviceLevel?: ServiceLevel;
    }
  | {
      message: 'pibr.001';
      /** An echo to the SPI (connectivity check); the event's `requestId` keys its saga. */
      echo: { data: string; requestedAt: string };
    }
  | {
      message: 'pacs.004';
      /** The return; its `returnId` (RtrId, `D…`) must equal the event's `endToEndId`, which keys its saga. */
      return: Omit<PaymentReturn, 'debtorAgentIspb'> & { returnedAt: string };
    };

/** `DictRequested` data, version 1: one DICT operation with its request body (write operations). */
export interface DictRequestedData {
  operation: DictOperation;
  /** The request body as the DICT OpenAPI names its fields; absent for read operations. */
  body?: DictObject;
  /** Path parameters (`Key`, `ClaimId`) for operations that name a resource. */
  pathParameters?: Readonly<Record<string, string>>;
  /**
   * Request headers of the operation that only core banking knows (`PI-PayerId`: the payer's
   * CPF/CNPJ, `PI-EndToEndId`: the payment the key is read for). Both are required for getEntry
   * (DICT OpenAPI 2.12.1, `GET /entries/{Key}`, header parameters `required: true`).
   * `PI-RequestingParticipant` is the PSP's ISPB, added by the transmit worker.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * Query parameters of the operation, among those its OpenAPI defines (listClaims: `IsDonor`,
   * `Status`, `Limit`, …; a list value repeats the parameter). listClaims' required
   * `Participant` defaults to the PSP's ISPB, added by the transmit worker.
   */
  query?: Readonly<Record<string, string | readonly string[]>>;
}

/** The DICT request headers a `DictRequested` may carry, with their formats (DICT OpenAPI 2.12.1). */
const DICT_REQUEST_HEADERS: Readonly<Record<string, RegExp>> = {
  'PI-PayerId': /^(\d{11}|\d{14})$/,
  // No pattern in the OpenAPI: "corresponde ao campo EndToEndId na mensagem pacs.008", whose ISPB
  // part is [0-9A-Z]{8} (pacs.008 1.16 XSD, EndToEndIdType), letters included.
  'PI-EndToEndId': /^[EeDd][0-9A-Z]{8}\d{12}[a-zA-Z0-9]{11}$/,
};

/**
 * What the sign worker consumes: requests from core banking to send (`PaymentRequested`,
 * `DictRequested`), and answers to what the BCB sent us (`InboundPaymentDecided`: core banking's
 * decision on an inbound pacs.008, answered with a pacs.002; `EchoReceived`: the SPI's pibr.001,
 * answered with a pibr.002) and the in-doubt sweeper's questions to the BCB (`OutcomeQueryRequested`:
 * a camt.060).
 */
export type SignRequest =
  | { kind: 'payment'; data: PaymentRequestedData }
  | { kind: 'dict'; data: DictRequestedData }
  | { kind: 'decision'; data: InboundPaymentDecidedData }
  | { kind: 'echo'; data: EchoReceivedData }
  | { kind: 'query'; data: OutcomeQueryRequestedData };

/** The request is not what `PaymentRequested`/`DictRequested` v1 promise: `SIGN_REQUEST_INVALID`. */
export class SignRequestInvalidError extends PermanentError {
  constructor(message: string) {
    super('SIGN_REQUEST_INVALID', message);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireRecord(value: unknown, path: string): Record<string, unknown> {
  if (!isRecord(value)) throw new SignRequestInvalidError(`${path} must be an object`);
  return value;
}

function requireString(record: Record<string, unknown>, field: string, path: string): string {
  const value = record[field];
  if (typeof value !== 'string' || value === '') throw new SignRequestInvalidError(`${path}.${field} must be a non-empty string`);
  return value;
}

function account(value: unknown, path: string): void {
  const record = requireRecord(value, path);
  requireString(record, 'number', path);
  requireString(record, 'type', path);
}

/**
 * Decodes the `data` of a `PaymentRequested` or `DictRequested` event. Field formats (ids,
 * amounts, ISPBs) are checked again, fully, by the ISO 20022 and DICT builders; this checks the
 * shape so that a malformed request fails with a message naming the field.
 */
export function decodeSignRequest(data: unknown, detailType: string): SignRequest {
  if (detailType === 'InboundPaymentDecided') return { kind: 'decision', data: decodeInboundPaymentDecided(data) };
  if (detailType === 'EchoReceived') return { kind: 'echo', data: decodeEchoReceived(data) };
  if (detailType === OUTCOME_QUERY_REQUESTED) return { kind: 'query', data: decodeOutcomeQueryRequested(data) };
  const root = requireRecord(data, 'data');
  if (detailType === 'PaymentRequested' && root.message === 'pibr.001') {
    const echo = requireRecord(root.echo, 'data.echo');
    return { kind: 'payment', data: { message: 'pibr.001', echo: { data: requireString(echo, 'data', 'data.echo'), requestedAt: requireString(echo, 'requestedAt', 'data.echo') } } };
  }
  if (detailType === 'PaymentRequested' && root.message === 'pacs.004') {
    const ret = requireRecord(root.return, 'data.return');
    for (const field of ['returnId', 'originalEndToEndId', 'amount', 'creditorAgentIspb', 'returnedAt']) requireString(ret, field, 'data.return');
    requireString(requireRecord(ret.reason, 'data.return.reason'), 'code', 'data.return.reason');
    return { kind: 'payment', data: { message: 'pacs.004', return: ret as unknown as Extract<PaymentRequestedData, { message: 'pacs.004' }>['return'] } };
  }
  if (detailType === 'PaymentRequested') {
    if (root.message !== 'pacs.008') throw new SignRequestInvalidError(`data.message must be "pacs.008", "pacs.004" or "pibr.001", got ${JSON.stringify(root.message) ?? 'nothing'}`);
    const tx = requireRecord(root.transaction, 'data.transaction');
    for (const field of ['endToEndId', 'amount', 'acceptanceDateTime', 'localInstrument', 'creditorAgentIspb']) requireString(tx, field, 'data.transaction');
    if (typeof tx.amount === 'string' && !/^\d{1,16}\.\d{2}$/.test(tx.amount)) {
      throw new SignRequestInvalidError(`data.transaction.amount must be a decimal string with two places (e.g. "10.00"), got ${JSON.stringify(tx.amount)}`);
    }
    const debtor = requireRecord(tx.debtor, 'data.transaction.debtor');
    requireString(debtor, 'name', 'data.transaction.debtor');
    requireString(debtor, 'taxId', 'data.transaction.debtor');
    requireString(requireRecord(tx.creditor, 'data.transaction.creditor'), 'taxId', 'data.transaction.creditor');
    account(tx.debtorAccount, 'data.transaction.debtorAccount');
    account(tx.creditorAccount, 'data.transaction.creditorAccount');
    // Purp is required by the pacs.008 1.16 XSD (CreditTransferTransaction43, no minOccurs="0"),
    // an ExternalPurpose1Code; without it the signed message would fail the XSD after signing.
    if (typeof tx.purpose !== 'string' || !(PURPOSE_CODES as readonly string[]).includes(tx.purpose)) {
      throw new SignRequestInvalidError(`data.transaction.purpose is required, one of ${PURPOSE_CODES.join(', ')} (pacs.008 1.16 Purp/Cd), got ${JSON.stringify(tx.purpose) ?? 'nothing'}`);
    }
    const serviceLevel = root.serviceLevel;
    if (serviceLevel !== undefined && (typeof serviceLevel !== 'string' || !Object.hasOwn(PAYMENT_PRIORITIES, serviceLevel))) {
      throw new SignRequestInvalidError(`data.serviceLevel must be one of ${Object.keys(PAYMENT_PRIORITIES).join(', ')} (pacs.008 1.16 SvcLvl/Prtry), got ${JSON.stringify(serviceLevel)}`);
    }
    return {
      kind: 'payment',
      data: {
        message: 'pacs.008',
        transaction: tx as unknown as Extract<PaymentRequestedData, { message: 'pacs.008' }>['transaction'],
        ...(serviceLevel === undefined ? {} : { serviceLevel: serviceLevel as ServiceLevel }),
      },
    };
  }
  if (detailType === 'DictRequested') {
    const operation = requireString(root, 'operation', 'data');
    if (!Object.hasOwn(DICT_OPERATIONS, operation)) {
      throw new SignRequestInvalidError(`data.operation must be one of ${Object.keys(DICT_OPERATIONS).join(', ')}, got ${JSON.stringify(operation)}`);
    }
    const spec = DICT_OPERATIONS[operation as DictOperation];
    if (spec.request !== undefined && !isRecord(root.body)) throw new SignRequestInvalidError(`data.body is required for ${operation}`);
    const pathParameters = root.pathParameters === undefined ? undefined : requireRecord(root.pathParameters, 'data.pathParameters');
    for (const [name, value] of Object.entries(pathParameters ?? {})) {
      if (typeof value !== 'string') throw new SignRequestInvalidError(`data.pathParameters.${name} must be a string`);
    }
    const headers = root.headers === undefined ? undefined : requireRecord(root.headers, 'data.headers');
    for (const [name, value] of Object.entries(headers ?? {})) {
      const format = DICT_REQUEST_HEADERS[name];
      if (format === undefined) throw new SignRequestInvalidError(`data.headers.${name} is not a header a DictRequested may set (${Object.keys(DICT_REQUEST_HEADERS).join(', ')})`);
      // The value is not quoted: PI-PayerId is a CPF/CNPJ (personal data).
      if (typeof value !== 'string' || !format.test(value)) throw new SignRequestInvalidError(`data.headers.${name} does not have the DICT's format`);
    }
    // DICT OpenAPI 2.12.1, GET /entries/{Key} (getEntry): PI-PayerId and PI-EndToEndId are
    // `required: true` header parameters; only core banking knows them (PI-RequestingParticipant,
    // also required, is added by the transmit worker).
    for (const name of spec.headers as readonly string[]) {
      if (Object.hasOwn(DICT_REQUEST_HEADERS, name) && headers?.[name] === undefined) {
        throw new SignRequestInvalidError(`data.headers.${name} is required for ${operation} (DICT OpenAPI ${spec.method} ${spec.path}, header ${name})`);
      }
    }
    const query = root.query === undefined ? undefined : requireRecord(root.query, 'data.query');
    const allowed: Readonly<Record<string, string>> = spec.query;
    for (const [name, value] of Object.entries(query ?? {})) {
      if (!Object.hasOwn(allowed, name)) {
        throw new SignRequestInvalidError(`data.query.${name} is not a query parameter of ${operation} (${Object.keys(allowed).join(', ') || 'it takes none'})`);
      }
      const values = Array.isArray(value) ? (value as unknown[]) : [value];
      if (values.length === 0 || values.some((v) => typeof v !== 'string' || v === '')) throw new SignRequestInvalidError(`data.query.${name} must be a non-empty string or a list of them`);
    }
    return {
      kind: 'dict',
      data: {
        operation: operation as DictOperation,
        ...(isRecord(root.body) ? { body: root.body as DictObject } : {}),
        ...(pathParameters === undefined ? {} : { pathParameters: pathParameters as Record<string, string> }),
        ...(headers === undefined ? {} : { headers: headers as Record<string, string> }),
        ...(query === undefined ? {} : { query: query as Record<string, string | readonly string[]> }),
      },
    };
  }
  throw new SignRequestInvalidError(`the sign worker takes PaymentRequested, DictRequested, InboundPaymentDecided, EchoReceived and OutcomeQueryRequested, not ${detailType}`);
}
