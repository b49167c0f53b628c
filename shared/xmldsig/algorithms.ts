/** The XML-DSig namespace. */
export const DSIG_NAMESPACE = 'http://www.w3.org/2000/09/xmldsig#';
/** Exclusive C14N 1.0 without comments, the only canonicalization the BCB profiles use. */
export const ALGORITHM_EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
/** RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6931). */
export const ALGORITHM_RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
/** SHA-256 digest (XML Encryption). */
export const ALGORITHM_SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
/** The enveloped-signature transform. */
export const ALGORITHM_ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
