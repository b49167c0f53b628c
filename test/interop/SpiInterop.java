// Independent implementation of the BCB SPI signature profile on the JDK's javax.xml.crypto
// (JSR 105), used by test/integration/xmldsig to check selo against it in both directions.
//
//   java SpiInterop sign   <in.xml> <key.pem (PKCS#8)> <cert.pem> <out.xml>
//   java SpiInterop verify <in.xml> <trusted-cert.pem>     (exit 0 valid, 1 invalid)
//
// The profile's two special references need a URIDereferencer: URI="" means the AppHdr element
// (not the whole document) and a Reference without URI means the Document element.
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.math.BigInteger;
import java.nio.file.Files;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import javax.xml.crypto.AlgorithmMethod;
import javax.xml.crypto.Data;
import javax.xml.crypto.KeySelector;
import javax.xml.crypto.KeySelectorException;
import javax.xml.crypto.KeySelectorResult;
import javax.xml.crypto.URIDereferencer;
import javax.xml.crypto.URIReference;
import javax.xml.crypto.URIReferenceException;
import javax.xml.crypto.XMLCryptoContext;
import javax.xml.crypto.XMLStructure;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.DigestMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.Transform;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.crypto.dsig.keyinfo.X509IssuerSerial;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import javax.xml.crypto.dsig.spec.TransformParameterSpec;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.jcp.xml.dsig.internal.dom.DOMSubTreeData;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

public final class SpiInterop {
  private static final String DS = XMLSignature.XMLNS;

  private static Element child(Element parent, String localName) {
    for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
      if (n.getNodeType() == Node.ELEMENT_NODE && localName.equals(n.getLocalName())) return (Element) n;
    }
    throw new IllegalStateException("no " + localName + " in " + parent.getLocalName());
  }

  /** URI="" is the AppHdr, no URI is the Document; anything else goes to the JDK's dereferencer. */
  private static URIDereferencer spiDereferencer(Document doc, URIDereferencer fallback) {
    Element root = doc.getDocumentElement();
    Element appHdr = child(root, "AppHdr");
    Element document = child(root, "Document");
    return (URIReference ref, XMLCryptoContext ctx) -> {
      String uri = ref.getURI();
      if (uri == null) return new DOMSubTreeData(document, true);
      if (uri.isEmpty()) return new DOMSubTreeData(appHdr, true);
      return fallback.dereference(ref, ctx);
    };
  }

  private static Document parse(File file) throws Exception {
    DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
    dbf.setNamespaceAware(true);
    dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    return dbf.newDocumentBuilder().parse(file);
  }

  private static X509Certificate readCert(String path) throws Exception {
    return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(Files.readAllBytes(new File(path).toPath())));
  }

  private static PrivateKey readKey(String path) throws Exception {
    String pem = Files.readString(new File(path).toPath()).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
  }

  private static void sign(String in, String keyPath, String certPath, String out) throws Exception {
    Document doc = parse(new File(in));
    XMLSignatureFactory fac = XMLSignatureFactory.getInstance("DOM");
    Transform exc = fac.newTransform(CanonicalizationMethod.EXCLUSIVE, (TransformParameterSpec) null);
    Transform enveloped = fac.newTransform(Transform.ENVELOPED, (TransformParameterSpec) null);
    DigestMethod sha256 = fac.newDigestMethod(DigestMethod.SHA256, null);
    String keyInfoId = "KI-java-1";
    List<Reference> refs = List.of(
        fac.newReference("#" + keyInfoId, sha256, List.of(exc), null, null),
        fac.newReference("", sha256, List.of(enveloped, exc), null, null),
        fac.newReference(null, sha256, List.of(exc), null, null));
    SignedInfo si = fac.newSignedInfo(
        fac.newCanonicalizationMethod(CanonicalizationMethod.EXCLUSIVE, (C14NMethodParameterSpec) null),
        fac.newSignatureMethod(SignatureMethod.RSA_SHA256, null), refs);
    X509Certificate cert = readCert(certPath);
    KeyInfoFactory kif = fac.getKeyInfoFactory();
    X509IssuerSerial issuerSerial = kif.newX509IssuerSerial(cert.getIssuerX500Principal().getName(X500Principal.RFC2253), cert.getSerialNumber());
    KeyInfo ki = kif.newKeyInfo(List.of(kif.newX509Data(List.of(issuerSerial))), keyInfoId);
    Element sgntr = child(child(doc.getDocumentElement(), "AppHdr"), "Sgntr");
    DOMSignContext ctx = new DOMSignContext(readKey(keyPath), sgntr);
    ctx.setDefaultNamespacePrefix("ds");
    ctx.setURIDereferencer(spiDereferencer(doc, fac.getURIDereferencer()));
    fac.newXMLSignature(si, ki).sign(ctx);
    try (FileOutputStream os = new FileOutputStream(out)) {
      TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(os));
    }
  }

  /** Finds the trusted certificate by X509IssuerSerial (issuer compared as X500 names); never uses embedded certificates. */
  private static KeySelector trustStoreSelector(X509Certificate trusted) {
    return new KeySelector() {
      @Override
      public KeySelectorResult select(KeyInfo keyInfo, Purpose purpose, AlgorithmMethod method, XMLCryptoContext context) throws KeySelectorException {
        for (XMLStructure s : keyInfo.getContent()) {
          if (!(s instanceof X509Data)) continue;
          for (Object o : ((X509Data) s).getContent()) {
            if (o instanceof X509IssuerSerial) {
              X509IssuerSerial is = (X509IssuerSerial) o;
              if (new X500Principal(is.getIssuerName()).equals(trusted.getIssuerX500Principal()) && is.getSerialNumber().equals(trusted.getSerialNumber())) {
                Key key = trusted.getPublicKey();
                return () -> key;
              }
            }
          }
        }
        throw new KeySelectorException("signer not in the trust store");
      }
    };
  }

  private static boolean verify(String in, String trustedPath) throws Exception {
    Document doc = parse(new File(in));
    NodeList signatures = doc.getElementsByTagNameNS(DS, "Signature");
    if (signatures.getLength() != 1) throw new IllegalStateException("expected one signature");
    Element signature = (Element) signatures.item(0);
    XMLSignatureFactory fac = XMLSignatureFactory.getInstance("DOM");
    DOMValidateContext ctx = new DOMValidateContext(trustStoreSelector(readCert(trustedPath)), signature);
    Element keyInfo = child(signature, "KeyInfo");
    ctx.setIdAttributeNS(keyInfo, null, "Id");
    ctx.setURIDereferencer(spiDereferencer(doc, fac.getURIDereferencer()));
    XMLSignature sig = fac.unmarshalXMLSignature(ctx);
    boolean valid = sig.validate(ctx);
    if (!valid) {
      System.err.println("signature value valid: " + sig.getSignatureValue().validate(ctx));
      for (Object r : sig.getSignedInfo().getReferences()) {
        Reference ref = (Reference) r;
        System.err.println("reference " + ref.getURI() + " valid: " + ref.validate(ctx));
      }
    }
    return valid;
  }

  public static void main(String[] args) throws Exception {
    if (args.length >= 5 && args[0].equals("sign")) {
      sign(args[1], args[2], args[3], args[4]);
      return;
    }
    if (args.length >= 3 && args[0].equals("verify")) {
      boolean valid = verify(args[1], args[2]);
      System.out.println(valid ? "VALID" : "INVALID");
      System.exit(valid ? 0 : 1);
    }
    System.err.println("usage: SpiInterop sign <in> <key.pem> <cert.pem> <out> | verify <in> <cert.pem>");
    System.exit(2);
  }
}
