"""Keys: the libp2p key protobufs and peer IDs (spec vectors), the on-disk keystore, and the
``ipmirror key``/``ipmirror name`` commands.

Key vectors: libp2p/specs ``peer-ids/peer-ids.md`` ("Test vectors"); peer ID text forms from the
same document's "String representation" section.
"""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from _fixtures import require_fixtures
from conftest import CLI
from ipmirror.cli.naming import format_duration, parse_duration
from ipmirror.codec.cid import CID, IDENTITY, SHA2_256
from ipmirror.codec.libp2p_key import KeyType, PrivateKey, PublicKey
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import Conflict, DecodeError, InvalidInput, NotFound, UnsupportedFormat
from ipmirror.naming.keystore import Keystore

# -- spec vectors -----------------------------------------------------------------------------------

KEY_VECTORS = {  # type: (private key protobuf hex, public key protobuf hex)
    KeyType.ED25519: (
        "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be"
        "8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
        "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
    KeyType.SECP256K1: (
        "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB",
        "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"),
    KeyType.ECDSA: (
        "08031279307702010104203E5B1FE9712E6C314942A750BD67485DE3C1EFE85B1BFB520AE8F9AE3DFA4A4CA00A06"
        "082A8648CE3D030107A14403420004DE3D300FA36AE0E8F5D530899D83ABAB44ABF3161F162A4BC901D8E6ECDA02"
        "0E8B6D5F8DA30525E71D6851510C098E5C47C646A597FB4DCEC034E9F77C409E62",
        "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83ab"
        "ab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c"
        "409e62"),
}
RSA_PRIVATE = (
    "080012ae123082092a0201000282020100e1beab071d08200bde24eef00d049449b07770ff9910257b2d7d5dda242ce8"
    "f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae9880089704a94e5066d594162ae6ee8892e6ec70701db0a6c44"
    "5c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c33e76c21e9beb172fd4"
    "4c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395ad941256542c793902185153c474bed109d6ff5141"
    "ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901d27bb35aa0d7e20561da08885ef0abbf8e2fb48d6a548704"
    "7a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766da295ab78822add5612a2df83bcee814cf50973e80d"
    "7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761dbc13b5c086d6b64bf7ae7dacc14622375d92a8ff9a"
    "f7eb962162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7"
    "adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb04a9580b4753c1738a6a760ae1afd851a1a4bdad23"
    "1cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad317e4875fe6481"
    "01b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135baca6fd475224269bbe"
    "1b02030100010282020100a472ffa858efd8588ce59ee264b957452f3673acdf5631d7bfd5ba0ef59779c231b0bc838a"
    "8b14cae367b6d9ef572c03c7883b0a3c652f5c24c316b1ccfd979f13d0cd7da20c7d34d9ec32dfdc81ee7292167e706d"
    "705efde5b8f3edfcba41409e642f8897357df5d320d21c43b33600a7ae4e505db957c1afbc189d73f0b5d972d9aaaeeb"
    "232ca20eebd5de6fe7f29d01470354413cc9a0af1154b7af7c1029adcd67c74b4798afeb69e09f2cb387305e73a1b5f4"
    "50202d54f0ef096fe1bde340219a1194d1ac9026e90b366cce0c59b239d10e4888f52ca1780824d39ae01a6b9f4dd605"
    "9191a7f12b2a3d8db3c2868cd4e5a5862b8b625a4197d52c6ac77710116ebd3ced81c4d91ad5fdfbed68312ebce7eea4"
    "5c1833ca3acf7da2052820eacf5c6b07d086dabeb893391c71417fd8a4b1829ae2cf60d1749d0e25da19530d889461c2"
    "1da3492a8dc6ccac7de83ac1c2185262c7473c8cc42f547cc9864b02a8073b6aa54a037d8c0de3914784e6205e83d979"
    "18b944f11b877b12084c0dd1d36592f8a4f8b8da5bb404c3d2c079b22b6ceabfbcb637c0dbe0201f0909d533f8bf308a"
    "da47aee641a012a494d31b54c974e58b87f140258258bb82f31692659db7aa07e17a5b2a0832c24e122d3a8babcc9ee7"
    "4cbb07d3058bb85b15f6f6b2674aba9fd34367be9782d444335fbed31e3c4086c652597c27104938b47fa10282010100"
    "e9fdf843c1550070ca711cb8ff28411466198f0e212511c3186623890c0071bf6561219682fe7dbdfd81176eba7c4fab"
    "a21614a20721e0fcd63768e6d925688ecc90992059ac89256e0524de90bf3d8a052ce6a9f6adafa712f3107a016e20c8"
    "0255c9e37d8206d1bc327e06e66eb24288da866b55904fd8b59e6b2ab31bc5eab47e597093c63fab7872102d57b4c589"
    "c66077f534a61f5f65127459a33c91f6db61fc431b1ae90be92b4149a3255291baf94304e3efb77b1107b5a3bda91135"
    "9c40a53c347ff9100baf8f36dc5cd991066b5bdc28b39ed644f404afe9213f4d31c9d4e40f3a5f5e3c39bebeb244e841"
    "37544e1a1839c1c8aaebf0c78a7fad590282010100f6fa1f1e6b803742d5490b7441152f500970f46feb0b73a6e4baba"
    "2aaf3c0e245ed852fc31d86a8e46eb48e90fac409989dfee45238f97e8f1f8e83a136488c1b04b8a7fb695f37b861630"
    "7ff8a8d63e8cfa0b4fb9b9167ffaebabf111aa5a4344afbabd002ae8961c38c02da76a9149abdde93eb389eb32595c29"
    "ba30d8283a7885218a5a9d33f7f01dbdf85f3aad016c071395491338ec318d39220e1c7bd69d3d6b520a13a30d745c10"
    "2b827ad9984b0dd6aed73916ffa82a06c1c111e7047dcd2668f988a0570a71474992eecf416e068f029ec323d5d635fd"
    "24694fc9bf96973c255d26c772a95bf8b7f876547a5beabf86f06cd21b67994f944e7a5493028201010095b02fd30069"
    "e547426a8bea58e8a2816f33688dac6c6f6974415af8402244a22133baedf34ce499d7036f3f19b38eb00897c18949b0"
    "c5a25953c71aeeccfc8f6594173157cc854bd98f16dffe8f28ca13b77eb43a2730585c49fc3f608cd811bb54b03b84bd"
    "daa8ef910988567f783012266199667a546a18fd88271fbf63a45ae4fd4884706da8befb9117c0a4d73de5172f8640b1"
    "091ed8a4aea3ed4641463f5ff6a5e3401ad7d0c92811f87956d1fd5f9a1d15c7f3839a08698d9f35f9d966e5000f7cb2"
    "655d7b6c4adcd8a9d950ea5f61bb7c9a33c17508f9baa313eecfee4ae493249ebe05a5d7770bbd3551b2eeb752e3649e"
    "0636de08e3d672e66cb90282010100ad93e4c31072b063fc5ab5fe22afacece775c795d0efdf7c704cfc027bde0d626a"
    "7646fc905bb5a80117e3ca49059af14e0160089f9190065be9bfecf12c3b2145b211c8e89e42dd91c38e9aa23ca73697"
    "063564f6f6aa6590088a738722df056004d18d7bccac62b3bafef6172fc2a4b071ea37f31eff7a076bcab7dd144e51a9"
    "da8754219352aef2c73478971539fa41de4759285ea626fa3c72e7085be47d554d915bbb5149cb6ef835351f23104304"
    "9cd941506a034bf2f8767f3e1e42ead92f91cb3d75549b57ef7d56ac39c2d80d67f6a2b4ca192974bfc5060e2dd17121"
    "7971002193dba12e7e4133ab201f07500a90495a38610279b13a48d54f0c99028201003e3a1ac0c2b67d54ed5c4bbe04"
    "a7db99103659d33a4f9d35809e1f60c282e5988dddc964527f3b05e6cc890eab3dcb571d66debf3a5527704c87264b39"
    "54d7265f4e8d2c637dd89b491b9cf23f264801f804b90454d65af0c4c830d1aef76f597ef61b26ca857ecce9cb78d4f6"
    "c2218c00d2975d46c2b013fbf59b750c3b92d8d3ed9e6d1fd0ef1ec091a5c286a3fe2dead292f40f380065731e2079eb"
    "b9f2a7ef2c415ecbb488da98f3a12609ca1b6ec8c734032c8bd513292ff842c375d4acd1b02dfb206b24cd815f8e2f9d"
    "4af8e7dea0370b19c1b23cc531d78b40e06e1119ee2e08f6f31c6e2e8444c568d13c5d451a291ae0c9f1d4f27d23b3a0"
    "0d60ad"
)
RSA_PUBLIC = (
    "080012a60430820222300d06092a864886f70d01010105000382020f003082020a0282020100e1beab071d08200bde24"
    "eef00d049449b07770ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae988008970"
    "4a94e5066d594162ae6ee8892e6ec70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0"
    "ab3aeb1873282bebd3da03c33e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395"
    "ad941256542c793902185153c474bed109d6ff5141ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901d27bb3"
    "5aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766d"
    "a295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761d"
    "bc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeff"
    "d7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb"
    "04a9580b4753c1738a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c"
    "79c13d63edb6e14feaeffabc90ad317e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca"
    "959b0f5dcbc90caeefc4135baca6fd475224269bbe1b0203010001"
)
KEY_VECTORS[KeyType.RSA] = (RSA_PRIVATE, RSA_PUBLIC)


@pytest.mark.parametrize("key_type", list(KEY_VECTORS), ids=lambda t: t.label)
def test_spec_key_vectors(key_type: KeyType) -> None:
    priv_hex, pub_hex = KEY_VECTORS[key_type]
    sk = PrivateKey.from_bytes(bytes.fromhex(priv_hex))
    assert sk.type is key_type
    assert sk.to_bytes() == bytes.fromhex(priv_hex)  # we write the same bytes back
    pk = sk.public_key()
    assert pk.to_bytes() == bytes.fromhex(pub_hex)   # "produce the provided public key"
    assert PublicKey.from_bytes(bytes.fromhex(pub_hex)) == pk
    sig = sk.sign(b"message")
    assert pk.verify(b"message", sig) and not pk.verify(b"other", sig)
    pid = PeerID.from_public_key(pk)
    raw = pk.to_bytes()
    if len(raw) <= 42:  # Ed25519 (36 bytes), secp256k1 (37 bytes): inlined
        assert pid.multihash[0] == IDENTITY and pid.public_key() == pk
    else:               # RSA, ECDSA: sha2-256 of the encoded key
        assert pid.multihash[0] == SHA2_256 and pid.public_key() is None
    assert pid.matches(pk) and PeerID.parse(str(pid)) == pid == PeerID.parse(pid.to_base58())


def test_peer_id_text_forms() -> None:
    # Examples from the peer-ids spec: the same sha256 peer ID as a CID and as base58btc.
    assert PeerID.parse("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe") == \
        PeerID.parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    ed = PeerID.parse("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
    assert ed.is_identity and ed.public_key() is not None
    assert ed.to_base58() == "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    k51 = str(ed)
    assert k51.startswith("k51qzi5uqu5d") and PeerID.parse(k51) == ed
    assert PeerID.parse(k51.upper()) == ed  # base36 is case-insensitive
    assert PeerID.parse(ed.to_base32()) == ed and ed.to_base32().startswith("bafzaa")
    assert ed.cid == CID.parse(k51)
    # The spec vector's Ed25519 key: name forms derived from the key.
    pk = PublicKey.from_bytes(bytes.fromhex(KEY_VECTORS[KeyType.ED25519][1]))
    pid = PeerID.from_public_key(pk)
    assert pid.to_base58().startswith("12D3KooW") and str(pid).startswith("k51qzi5uqu5d")


@pytest.mark.parametrize("text", [
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",  # a raw CID, not libp2p-key
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", "12D3KooW0", "k51", "", "xyz", "foo.bar",
])
def test_bad_peer_ids(text: str) -> None:
    with pytest.raises(InvalidInput):
        PeerID.parse(text)


def test_ed25519_private_key_forms() -> None:
    seed = bytes(range(32))
    sk = PrivateKey.from_ed25519_seed(seed)
    pub = sk.data[32:]
    assert sk.data == seed + pub and len(sk.to_bytes()) == 68
    legacy = PrivateKey.load(KeyType.ED25519, seed + pub + pub)  # old 96-byte form
    assert legacy.data == sk.data and legacy.to_bytes() == sk.to_bytes()
    with pytest.raises(DecodeError, match="two different public keys"):
        PrivateKey.load(KeyType.ED25519, seed + pub + bytes(32))
    with pytest.raises(DecodeError, match="does not belong"):
        PrivateKey.load(KeyType.ED25519, seed + bytes(32))
    with pytest.raises(DecodeError):
        PrivateKey.load(KeyType.ED25519, seed)
    assert "seed" not in repr(sk) and seed.hex() not in repr(sk)


def test_key_protobuf_decoding() -> None:
    sk = PrivateKey.from_ed25519_seed(bytes(32))
    raw = sk.to_bytes()
    data_field, type_field = raw[2:], raw[:2]
    assert PrivateKey.from_bytes(data_field + type_field).to_bytes() == raw  # any order; we write canonical
    assert PrivateKey.from_bytes(raw + b"\x18\x05").to_bytes() == raw       # unknown fields are skipped
    for bad in (data_field, type_field, raw[:-1], b"\x08\x01\x10\x00", b"\x0a\x00" + data_field):
        with pytest.raises(DecodeError):
            PrivateKey.from_bytes(bad)
    with pytest.raises(UnsupportedFormat, match="unknown libp2p key type 9"):
        PublicKey.from_bytes(b"\x08\x09\x12\x00")
    with pytest.raises(DecodeError, match="32 bytes"):
        PublicKey.from_bytes(b"\x08\x01\x12\x01x")


def test_secp256k1_signatures_are_low_s() -> None:
    sk = PrivateKey.from_crypto(ec.generate_private_key(ec.SECP256K1()))
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    for i in range(16):
        sig = sk.sign(bytes([i]))
        assert decode_dss_signature(sig)[1] <= order // 2
        assert sk.public_key().verify(bytes([i]), sig)


# -- keystore ---------------------------------------------------------------------------------------

def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_keystore_round_trip(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "keys")
    assert ks.list() == []
    a = ks.gen("a")
    b = ks.gen("B.b_-2")
    assert a.type is KeyType.ED25519 and str(a.id).startswith("k51qzi5uqu5d")
    assert [i.name for i in ks.list()] == ["B.b_-2", "a"]
    assert ks.info("a") == a and ks.find(str(a.id))[0] == "a" and ks.find(a.id.to_base58())[0] == "a"
    assert _mode(ks.path) == 0o700
    files = sorted(ks.path.iterdir())
    assert len(files) == 2 and all(_mode(f) == 0o600 for f in files)
    assert all(f.name.startswith("key_") for f in files)
    # export -> import gives the same key and name; the file is exactly the export
    raw = ks.export("a")
    assert raw == (ks.path / "key_me").read_bytes() and PrivateKey.from_bytes(raw).type is KeyType.ED25519
    c = ks.import_("c", raw)
    assert c.id == a.id and ks.export("c") == raw
    # PEM (Kubo's pem-pkcs8-cleartext) round trip
    pem = ks.get("a").to_pkcs8_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ks.import_("d", pem, pem=True).id == a.id
    # rename, rm
    assert ks.rename("d", "e").id == a.id and "d" not in ks.names()
    with pytest.raises(Conflict):
        ks.rename("e", "c")
    assert ks.rename("e", "c", force=True).id == a.id
    assert ks.rm("c") == a.id and ks.rm("B.b_-2") == b.id
    assert ks.names() == ["a"]
    with pytest.raises(NotFound):
        ks.rm("c")


def test_keystore_names_and_conflicts(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "keys")
    for bad in ("self", "", ".hidden", "a/b", "a b", "é", "x" * 101, ".."):
        with pytest.raises(InvalidInput):
            ks.gen(bad)
    ks.gen("Key")
    ks.gen("key")  # names differing in case are different keys, on any file system
    assert ks.info("Key").id != ks.info("key").id
    with pytest.raises(Conflict, match="exists already"):
        ks.gen("key")
    with pytest.raises(Conflict):
        ks.import_("key", ks.export("Key"))
    with pytest.raises(NotFound, match="no key named 'nope'"):
        ks.get("nope")
    with pytest.raises(NotFound, match="node identity"):
        ks.find("self")
    with pytest.raises(DecodeError):
        ks.import_("junk", b"not a key")
    ecdsa = PrivateKey.from_bytes(bytes.fromhex(KEY_VECTORS[KeyType.ECDSA][0])).to_bytes()
    with pytest.raises(UnsupportedFormat, match="allow_any_type"):
        ks.import_("ec", ecdsa)
    assert ks.import_("ec", ecdsa, allow_any_type=True).type is KeyType.ECDSA
    assert ks.gen("r", "rsa").type is KeyType.RSA
    with pytest.raises(InvalidInput):
        ks.gen("r2", "rsa", 1024)
    with pytest.raises(UnsupportedFormat):
        ks.gen("x", "dsa")
    leftovers = [p.name for p in ks.path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_concurrent_gen_of_one_name(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "keys")
    results: list[str] = []

    def gen() -> None:
        try:
            ks.gen("same")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=gen) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("conflict") == 7


# -- the command line -------------------------------------------------------------------------------

def test_cli_keys(cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `key export` writes NAME.key into the working directory
    k51 = cli("key", "gen", "site").text.strip()
    assert PeerID.parse(k51) and k51.startswith("k51qzi5uqu5d")
    assert cli("key", "gen", "--type", "ed25519", "other").rc == 0
    assert cli("key", "list").text.split() == ["other", "self", "site"]  # self: made with the repository
    assert f"{k51}  site" in cli("key", "list", "-l").text.splitlines()
    r = cli("key", "gen", "site", check=False)
    assert r.rc == 1 and r.err.strip() == "Error: a key named 'site' exists already"
    r = cli("key", "gen", "self", check=False)
    assert r.rc == 1 and r.err.startswith("Error: the key name 'self' is reserved")
    # export -> import under another name gives the same IPNS name
    cli("key", "export", "site")
    exported = tmp_path / "site.key"
    assert _mode(exported) == 0o600
    r = cli("key", "export", "site", check=False)
    assert r.rc == 1 and "refusing to overwrite" in r.err
    cli("key", "export", "site", "-o", tmp_path / "site.pem", "--format", "pem-pkcs8-cleartext")
    assert cli("key", "import", "copy", exported).text.strip() == k51
    pem = cli("key", "import", "copy2", tmp_path / "site.pem", "--format=pem-pkcs8-cleartext")
    assert pem.text.strip() == k51
    assert cli("key", "rename", "copy2", "copy3").text.strip() == f'Key {k51} was renamed to "copy3"'
    assert cli("key", "rm", "copy", "copy3").text.split() == ["copy", "copy3"]
    r = cli("key", "rm", "copy", check=False)
    assert r.rc == 1 and r.err.strip() == "Error: no key named 'copy'"
    r = cli("key", "import", "bad", tmp_path / "missing", check=False)
    assert r.rc == 1 and r.err.startswith("Error: ")


def test_cli_names(cli: CLI, tmp_path: Path) -> None:
    k51 = cli("key", "gen", "site").text.strip()
    out = cli("name", "publish", "--key", "site", "--allow-offline", "/ipfs/bafkqaaa").text.strip()
    assert out == f"Published to {k51}: /ipfs/bafkqaaa"
    out = cli("name", "publish", "--key=site", "--allow-offline=true", "--lifetime", "1h30m", "--ttl", "300s",
              "-Q", "bafkqaaa").text.strip()
    assert out == k51
    assert cli("name", "resolve", k51).text.strip() == "/ipfs/bafkqaaa"
    assert cli("name", "resolve", "site").text.strip() == "/ipfs/bafkqaaa"
    assert cli("name", "resolve", f"/ipns/{k51}/a").text.strip() == "/ipfs/bafkqaaa/a"
    assert cli("name", "dnslink", "site").text.strip() == f"dnslink=/ipns/{k51}"
    raw = cli("name", "get", "site").out
    rec_file = tmp_path / "site.ipns-record"
    rec_file.write_bytes(raw)
    text = cli("name", "inspect", rec_file, "--verify", k51).text
    assert "Sequence:      1" in text and "TTL:           5m0s" in text and "Signatures:    V1, V2" in text
    assert f"Validation:    valid for {k51}" in text
    js = json.loads(cli("name", "inspect", rec_file, "--verify", "site", "--json").text)
    assert js["Validation"]["Valid"] is True and js["Entry"]["TTLNanoseconds"] == 300 * 10**9
    assert js["Entry"]["Value"] == "/ipfs/bafkqaaa" and js["Signatures"] == ["V1", "V2"]
    # older or equal records are refused by `name put` (exit 4, issue #12)
    r = cli("name", "put", k51, rec_file, check=False)
    assert r.rc == 4 and "not newer" in r.err  # EXIT_REFUSED
    for args, msg in ((("name", "publish", "-k", "nosuch", "/ipfs/bafkqaaa"), "no key named 'nosuch'"),
                      (("name", "publish", "-k", "site", "-t", "2x", "/ipfs/bafkqaaa"), "invalid duration"),
                      (("name", "publish", "-k", "site", "/ipfs/nope"), "Error: invalid CID"),
                      (("name", "resolve", "nope"), "cannot resolve /ipns/nope")):
        r = cli(*args, check=False)
        assert r.rc == 1 and r.err.startswith("Error: ") and msg in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1


def test_cli_inspect_spec_vectors(cli: CLI) -> None:
    d = require_fixtures("gateway-conformance", "ipns_records")
    verdicts = {}
    for f in sorted(d.glob("*.ipns-record")):
        name = f.name.split("_")[0]
        js = json.loads(cli("name", "inspect", f, "--verify", name, "--json").text)
        verdicts[f.name.split("_", 1)[1].removesuffix(".ipns-record")] = js["Validation"]["Valid"]
    assert verdicts == {"v1": False, "v1-v2": True, "v1-v2-broken-v1-value": False,
                        "v1-v2-broken-signature-v2": False, "v1-v2-broken-signature-v1": True, "v2": True}
    text = cli("name", "inspect", next(d.glob("*_v2.ipns-record"))).text
    assert "not checked" in text and "Value:         /ipfs/bafkqadtwgiww63tmpeqhezldn5zgi" in text


def test_durations() -> None:
    h, m, s = 3600 * 10**9, 60 * 10**9, 10**9
    assert parse_duration("48h") == 48 * h
    assert parse_duration("5m") == 5 * m
    assert parse_duration("1h30m") == h + 30 * m
    assert parse_duration("300s") == 300 * s
    assert parse_duration("1.5h") == h + 30 * m
    assert parse_duration("100ms") == s // 10
    assert parse_duration("2us") == parse_duration("2µs") == 2000
    assert parse_duration("0") == 0
    for bad in ("", "5", "h", "-5m", "5 m", "1d", "1.h.5"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)
    for ns, text in ((0, "0s"), (5 * m, "5m0s"), (h + 30 * m, "1h30m0s"), (48 * h, "48h0m0s"),
                     (1_500_000_000, "1.5s"), (100 * 10**6, "100ms"), (1500, "1.5µs"), (7, "7ns"),
                     (30 * m, "30m0s")):
        assert format_duration(ns) == text
        assert parse_duration(text) == ns
