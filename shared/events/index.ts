export { EVENT_DETAIL_VERSION, EventDetailInvalidError, parseEventDetail, deriveDetail, isSagaId, paymentSagaId, dictSagaId, echoSagaId, querySagaId } from './event-detail.ts';
export type { CorrelationIds, EventDetail, DeriveDetailOptions } from './event-detail.ts';
export { MalformedEventError, decodeEventBody, encodeEventBody } from './event-envelope.ts';
export type { EventEnvelope, DataDecoder } from './event-envelope.ts';
export { isTraceparent, newTraceparent, childTraceparent } from './traceparent.ts';
export { decodeMessageSigned } from './message-signed.ts';
export type { MessageSignedData } from './message-signed.ts';
export { BCB_MESSAGE_RECEIVED, RECEIVE_SOURCE, copySource, inboxSagaId, decodeBcbMessageReceived } from './bcb-message-received.ts';
export type { BcbMessageReceivedData } from './bcb-message-received.ts';
export { COMPENSATE_SOURCE, COMPENSATION_FACTS, decodeCompensationTrigger, type CompensationTrigger } from './compensation-events.ts';
export {
  VERIFY_SOURCE,
  VERIFIED_EVENTS,
  decodePaymentSettled,
  decodePaymentRejected,
  decodeMessageRejected,
  decodeInboundReturnDecisionRequested,
  decodeInboundPaymentDecisionRequested,
  decodeInboundPaymentSettled,
  decodeInboundPaymentRejected,
  decodeEchoAnswered,
  decodeDictResponseVerified,
  decodeDictOperationFailed,
  decodeSignatureInvalid,
  decodeOutcomeConflict, decodeRejectionAmbiguous,
} from './verified-events.ts';
export type {
  VerifiedAccount,
  PaymentSettledData,
  ResolutionData,
  PaymentRejectedData,
  MessageRejectedData,
  InboundReturnDecisionRequestedData,
  EchoAnsweredData,
  DictResponseVerifiedData,
  DictOperationFailedData,
  SignatureInvalidData,
  OutcomeConflictData, RejectionAmbiguousData,
} from './verified-events.ts';
export {
  INBOUND_EVENTS,
  RECEIVER_REJECTION_CODES,
  inboundSagaId,
  decodeInboundPaymentDecided,
  decodeEchoReceived,
  describeDecision,
  REFUSAL_PREFIX,
  isRefusal,
  refusalCodeOf,
  inboundOutcomeFacts,
} from './inbound-events.ts';
export type {
  InboundPaymentDecisionRequestedData,
  InboundPaymentDecidedData,
  InboundOutcomeData,
  InboundPaymentSettledData,
  InboundPaymentRejectedData,
  InboundDecisionLateData,
  EchoReceivedData,
  UnsupportedMessageReceivedData,
} from './inbound-events.ts';
