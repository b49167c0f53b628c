// Distinguished names live in shared/pki (one implementation); XML-DSig keeps its names for them.
export {
  parseRfc2253,
  formatRdnSequence as formatRfc2253,
  namesEqual,
  certificateNames,
  certificateSerial,
  DistinguishedNameSyntaxError,
} from '../pki/name.ts';
export type { RdnSequence as DistinguishedName, RdnAttribute as NameAttribute } from '../pki/name.ts';
