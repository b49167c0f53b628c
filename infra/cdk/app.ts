// The AWS CDK app: `npx aws-cdk@2 synth -c env=prod` (cdk.json names this file). Region and account
// come from the CDK's usual environment (CDK_DEFAULT_REGION / CDK_DEFAULT_ACCOUNT); the rest from
// context values (`-c name=value`, docs/deploying.md):
//   env            environment name (selo-<env>-…)                       dev
//   ispb           the PSP's ISPB (required unless env is dev)             99999004
//   imageRepository, imageTag  the worker image in the bank's ECR          built from ./Dockerfile (target cloudhsm)
//   rsfnCidrs      the BCB's networks on the RSFN link, comma-separated    none
//   bcb            homologation | production (DICT/ICOM hosts)             homologation
// The AwsSolutions checks (cdk-nag) run as a validation plugin: synth fails on a finding.
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BCB_HOMOLOGATION, BCB_PRODUCTION, SeloStack } from './selo-stack.ts';

const app = new App();
const context = (name: string): string | undefined => app.node.tryGetContext(name) as string | undefined;
const environment = context('env') ?? 'dev';
const repository = context('imageRepository');
const ispb = context('ispb');
// The development PKI's ISPB may name only a development stack: every other one signs as the bank.
if (ispb === undefined && environment !== 'dev') throw new Error(`selo-${environment}: give the PSP's ISPB with -c ispb=<ISPB>`);
new SeloStack(app, `selo-${environment}`, {
  environment,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? 'sa-east-1' },
  ispb: ispb ?? '99999004',
  rsfnCidrs: (context('rsfnCidrs') ?? '').split(',').filter((c) => c !== ''),
  bcb: context('bcb') === 'production' ? BCB_PRODUCTION : BCB_HOMOLOGATION,
  transmitMarkerItem: context('transmitMarkerItem') === 'true',
  legacyMessageIds: context('legacyMessageIds') === 'true',
  image: (scope) =>
    repository === undefined
      ? ContainerImage.fromAsset(join(import.meta.dirname, '..', '..'), { target: 'cloudhsm' })
      : ContainerImage.fromEcrRepository(Repository.fromRepositoryName(scope, 'worker-repository', repository), context('imageTag') ?? 'latest'),
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
