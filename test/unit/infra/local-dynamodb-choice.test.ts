import { describe, expect, it } from 'vitest';
import { DEFAULT_LOCAL_DYNAMODB, localDynamoDbFromEnv } from '../../../infra/local/index.ts';

describe('the local DynamoDB stand-in setting', () => {
  it('runs dynalite when SELO_LOCAL_DYNAMODB is unset or empty', () => {
    expect(DEFAULT_LOCAL_DYNAMODB).toBe('dynalite');
    expect(localDynamoDbFromEnv({})).toBe('dynalite');
    expect(localDynamoDbFromEnv({ SELO_LOCAL_DYNAMODB: '' })).toBe('dynalite');
  });

  it('runs the stand-in SELO_LOCAL_DYNAMODB names', () => {
    expect(localDynamoDbFromEnv({ SELO_LOCAL_DYNAMODB: 'dynalite' })).toBe('dynalite');
    expect(localDynamoDbFromEnv({ SELO_LOCAL_DYNAMODB: 'dynamodb-local' })).toBe('dynamodb-local');
  });

  it('refuses another value, naming the variable and the value', () => {
    expect(() => localDynamoDbFromEnv({ SELO_LOCAL_DYNAMODB: 'localstack' })).toThrow(/SELO_LOCAL_DYNAMODB must be one of dynamodb-local, dynalite, got "localstack"/);
  });
});
