import { CfnSecurityGroupEgress, CfnSecurityGroupIngress, SubnetType } from 'aws-cdk-lib/aws-ec2';
import type { SecurityGroup, Vpc } from 'aws-cdk-lib/aws-ec2';
import { CfnCluster } from 'aws-cdk-lib/aws-cloudhsm';
import { Construct } from 'constructs';

/**
 * CloudHSM's client ports: 2223–2225 TCP from the client to every HSM of the cluster (AWS CloudHSM
 * User Guide, "Configure the client Amazon EC2 instance security groups").
 */
export const CLOUDHSM_PORTS = { from: 2223, to: 2225 } as const;

/** Options of {@link SeloHsm}. */
export interface SeloHsmProps {
  vpc: Vpc;
  /** The only clients allowed on the HSM ports: the worker tasks that sign or hold the mTLS key. */
  clients: SecurityGroup;
  /** `hsm2m.medium` (current) or `hsm1.medium` (CloudHSM CreateCluster API). @defaultValue 'hsm2m.medium' */
  hsmType?: string;
}

/**
 * The CloudHSM cluster (`AWS::CloudHSM::Cluster`, the L1 in aws-cdk-lib 2.276) in the private
 * subnets, one per availability zone. CloudFormation creates the cluster and its security group; the
 * HSMs themselves, the cluster's initialisation (its CSR signed by the bank's CA), activation and
 * the crypto user are manual steps (`docs/deploying.md`), because no CloudFormation resource does
 * them. The cluster's own security group gets one ingress rule — ports 2223–2225 from the worker
 * security group — and the workers one matching egress rule.
 */
export class SeloHsm extends Construct {
  /** The cluster; its `attrClusterId` is what `aws cloudhsmv2 create-hsm` takes. */
  readonly cluster: CfnCluster;

  constructor(scope: Construct, id: string, props: SeloHsmProps) {
    super(scope, id);
    this.cluster = new CfnCluster(this, 'cluster', {
      hsmType: props.hsmType ?? 'hsm2m.medium',
      mode: 'FIPS',
      subnetIds: props.vpc.selectSubnets({ subnetType: SubnetType.PRIVATE_ISOLATED }).subnetIds,
    });
    new CfnSecurityGroupIngress(this, 'from-workers', {
      groupId: this.cluster.attrSecurityGroup,
      ipProtocol: 'tcp',
      fromPort: CLOUDHSM_PORTS.from,
      toPort: CLOUDHSM_PORTS.to,
      sourceSecurityGroupId: props.clients.securityGroupId,
      description: 'CloudHSM client (PKCS#11) from the selo worker tasks',
    });
    new CfnSecurityGroupEgress(this, 'workers-to-hsm', {
      groupId: props.clients.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: CLOUDHSM_PORTS.from,
      toPort: CLOUDHSM_PORTS.to,
      destinationSecurityGroupId: this.cluster.attrSecurityGroup,
      description: 'CloudHSM cluster (PKCS#11)',
    });
  }
}
