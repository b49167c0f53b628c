// The AWS CDK app: `npx cdk synth -c env=prod` (cdk.json names this file). Region and account
// come from the CDK's usual environment (CDK_DEFAULT_REGION / CDK_DEFAULT_ACCOUNT).
import { App } from 'aws-cdk-lib';
import { SeloStack } from './selo-stack.ts';

const app = new App();
const environment = (app.node.tryGetContext('env') as string | undefined) ?? 'dev';
new SeloStack(app, `selo-${environment}`, {
  environment,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? 'sa-east-1' },
});
app.synth();
