/**
 * Whether DynamoDB refused a write because its `ConditionExpression` did not hold
 * (`ConditionalCheckFailedException`): the conditional writes' "someone got there first", which
 * callers decide on, unlike every other error.
 */
export function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
