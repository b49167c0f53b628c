import { PermanentError } from '../../shared/errors/index.ts';

/**
 * An error the emulator answers with in the AWS JSON 1.1 error shape: HTTP status,
 * `x-amzn-errortype` header and a body `{"__type": awsType, "message": ...}`, so that the real
 * `@aws-sdk/client-eventbridge` raises the exception class named by {@link EventBridgeApiError.awsType}.
 */
export class EventBridgeApiError extends PermanentError {
  /** The AWS error type, e.g. `ResourceNotFoundException`. */
  readonly awsType: string;
  /** The HTTP status code of the error response. */
  readonly statusCode: number;

  constructor(awsType: string, message: string, statusCode = 400) {
    super(toUpperSnake(awsType), message, { details: { awsType, statusCode } });
    this.awsType = awsType;
    this.statusCode = statusCode;
  }
}

function toUpperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/gu, '$1_$2').toUpperCase();
}

/** A `ValidationException` (400): malformed request, missing or bad parameter. */
export function validationError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('ValidationException', message);
}

/** A `ResourceNotFoundException` (400): the named rule or event bus does not exist. */
export function resourceNotFoundError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('ResourceNotFoundException', message);
}

/** A `ResourceAlreadyExistsException` (400). */
export function resourceAlreadyExistsError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('ResourceAlreadyExistsException', message);
}

/** An `InvalidEventPatternException` (400), as PutRule and TestEventPattern return it. */
export function invalidEventPatternError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('InvalidEventPatternException', message);
}

/** A `LimitExceededException` (400). */
export function limitExceededError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('LimitExceededException', message);
}

/** An `UnknownOperationException` (400): the `X-Amz-Target` names no EventBridge action. */
export function unknownOperationError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('UnknownOperationException', message);
}

/** An `InternalException` (500): an unexpected failure inside the emulator. */
export function internalError(message: string): EventBridgeApiError {
  return new EventBridgeApiError('InternalException', message, 500);
}
