import { Validations } from 'aws-cdk-lib';
import { FlowLogDestination, FlowLogTrafficType, GatewayVpcEndpointAwsService, InterfaceVpcEndpointAwsService, IpAddresses, Peer, Port, SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import type { IInterfaceVpcEndpointService } from 'aws-cdk-lib/aws-ec2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** Options of {@link SeloNetwork}. */
export interface SeloNetworkProps {
  /** Resource names' prefix (`selo-<env>`). */
  prefix: string;
  /** Key that encrypts the flow logs. */
  key: IKey;
  /**
   * The BCB's networks reached through the RSFN link (a provider's Direct Connect or VPN ends on
   * the VPC's virtual private gateway): the workers may open TCP to these and nothing else outside
   * the VPC.
   */
  rsfnCidrs: readonly string[];
  /**
   * TCP ports of the BCB's services on the RSFN (the DICT OpenAPI's servers:
   * `dict.pi.rsfn.net.br:16422` production, `dict-h.pi.rsfn.net.br:16522` homologation).
   */
  rsfnPorts: readonly number[];
  /** VPC address range. @defaultValue '10.40.0.0/16' */
  cidr?: string;
}

/**
 * The AWS services the workers call (SDK v3 clients in `shared/aws`, the ECS agent pulling the
 * image and the secrets, the awslogs driver). S3 and DynamoDB are gateway endpoints; the rest are
 * interface endpoints with private DNS, so the SDK's default host names resolve inside the VPC.
 */
export const INTERFACE_ENDPOINTS: Readonly<Record<string, IInterfaceVpcEndpointService>> = {
  sqs: InterfaceVpcEndpointAwsService.SQS,
  events: InterfaceVpcEndpointAwsService.EVENTBRIDGE,
  kinesis: InterfaceVpcEndpointAwsService.KINESIS_STREAMS,
  'secrets-manager': InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  'ecr-api': InterfaceVpcEndpointAwsService.ECR,
  'ecr-docker': InterfaceVpcEndpointAwsService.ECR_DOCKER,
  logs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
};

/**
 * selo's network: a VPC with private (isolated) subnets only — no internet gateway, no NAT — in
 * two availability zones (CloudHSM needs HSMs in two zones for availability); endpoints for every
 * AWS service the workers call; a virtual private gateway whose routes (the RSFN link's, by BGP or
 * static VPN routes) are propagated to the private subnets; and the workers' security group, whose
 * only egress is HTTPS to the endpoints, the HSM ports to the CloudHSM cluster (added by the HSM
 * construct) and the BCB's ports on the RSFN CIDRs.
 */
export class SeloNetwork extends Construct {
  /** Two availability zones, private (isolated) subnets only. */
  readonly vpc: Vpc;
  /** The workers' tasks. */
  readonly workers: SecurityGroup;

  constructor(scope: Construct, id: string, props: SeloNetworkProps) {
    super(scope, id);
    const flowLogs = new LogGroup(this, 'flow-logs', { logGroupName: `/selo/${props.prefix}/vpc-flow-logs`, retention: RetentionDays.ONE_YEAR, encryptionKey: props.key });
    this.vpc = new Vpc(this, 'vpc', {
      vpcName: props.prefix,
      ipAddresses: IpAddresses.cidr(props.cidr ?? '10.40.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      vpnGateway: true,
      vpnRoutePropagation: [{ subnetType: SubnetType.PRIVATE_ISOLATED }],
      flowLogs: { all: { destination: FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: FlowLogTrafficType.ALL } },
    });
    this.workers = new SecurityGroup(this, 'workers-sg', { vpc: this.vpc, description: 'selo worker tasks', allowAllOutbound: false });
    const endpoints = new SecurityGroup(this, 'endpoints-sg', { vpc: this.vpc, description: 'selo VPC interface endpoints', allowAllOutbound: false });
    endpoints.addIngressRule(this.workers, Port.tcp(443), 'HTTPS from the worker tasks');
    Validations.of(endpoints).acknowledge({ id: 'AwsSolutions-EC23', reason: "The only ingress is HTTPS from the workers' security group (a group reference, which the rule cannot evaluate), never 0.0.0.0/0." });
    this.workers.addEgressRule(endpoints, Port.tcp(443), 'AWS APIs through the interface endpoints');
    for (const [name, service] of Object.entries(INTERFACE_ENDPOINTS)) {
      this.vpc.addInterfaceEndpoint(`${name}-endpoint`, { service, privateDnsEnabled: true, securityGroups: [endpoints], subnets: { subnetType: SubnetType.PRIVATE_ISOLATED } });
    }
    this.vpc.addGatewayEndpoint('s3-endpoint', { service: GatewayVpcEndpointAwsService.S3, subnets: [{ subnetType: SubnetType.PRIVATE_ISOLATED }] });
    this.vpc.addGatewayEndpoint('dynamodb-endpoint', { service: GatewayVpcEndpointAwsService.DYNAMODB, subnets: [{ subnetType: SubnetType.PRIVATE_ISOLATED }] });
    // Gateway endpoints (S3, which also serves ECR's image layers, and DynamoDB) have no address in
    // the VPC: their region's prefix lists would need a lookup at synth. HTTPS to any address is
    // allowed instead; nothing on the internet is reachable, because the subnets' only routes are
    // the VPC itself, the gateway endpoints and the virtual private gateway (RSFN).
    this.workers.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'S3 and DynamoDB through their gateway endpoints (no internet route exists)');
    for (const cidr of props.rsfnCidrs) {
      for (const port of props.rsfnPorts) this.workers.addEgressRule(Peer.ipv4(cidr), Port.tcp(port), 'the BCB (ICOM, DICT) over the RSFN link');
    }
  }
}
