//! Keys and ciphertexts in files and in memory: round trips, keys of another circuit or
//! encoding refused, corrupted files explained.

use std::path::Path;

use sqnn::analyze::CheckedGraph;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self};
use sqnn::tfhe::{
    load_client_key, load_server_key, save_keys, ClientKey, EncryptedInput, EncryptedOutput,
    ObjectInfo, ServerKey, TfheBackend,
};
use sqnn::Error;

use crate::common::builder::Builder;
use crate::common::tfhe::*;

#[test]
fn keys_inputs_and_outputs_round_trip_through_files() {
    let c = circuit4();
    let dir = tempfile::tempdir().unwrap();
    let (ck, sk) = keys4();
    let m = save_keys(dir.path(), &c, ck, sk, fhe::FheMode::Exact).unwrap();
    assert_eq!(m.parameter_set, SET4);
    assert_eq!(m.mode, Some(fhe::FheMode::Exact));
    assert_eq!(sqnn::tfhe::load_manifest(dir.path()).unwrap(), m);
    // A manifest written before the mode was recorded still loads, without one.
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("keys.json")).unwrap())
            .unwrap();
    json.as_object_mut().unwrap().remove("mode");
    std::fs::write(old.join("keys.json"), json.to_string()).unwrap();
    assert_eq!(sqnn::tfhe::load_manifest(&old).unwrap().mode, None);
    assert!(m.server_key_bytes > 1_000_000, "{m:?}");
    let server = load_server_key(dir.path(), &c).unwrap();
    let client = load_client_key(dir.path(), &c).unwrap();
    let x = vec![-2, 3, 2];
    let enc = client.encrypt(&c, &x).unwrap();
    let pin = dir.path().join("in.ct");
    enc.save(&pin).unwrap();
    let enc = EncryptedInput::load(&pin, &c).unwrap();
    let out = server.evaluate(&c, &enc).unwrap();
    let pout = dir.path().join("out.ct");
    out.save(&pout).unwrap();
    let out = EncryptedOutput::load(&pout, &c).unwrap();
    // A loaded client key decrypts what the original server key computed, and vice versa.
    let got = client.decrypt(&c, &out).unwrap();
    let want = ClearBackend::default()
        .run(&c, std::slice::from_ref(&x))
        .unwrap();
    assert_eq!(got, want[0]);
    let out2 = sk.evaluate(&c, &ck.encrypt(&c, &x).unwrap()).unwrap();
    assert_eq!(client.decrypt(&c, &out2).unwrap(), want[0]);
    // Loaded keys make a working backend.
    let b = TfheBackend::load(dir.path(), &c).unwrap();
    assert_eq!(b.run(&c, &[x]).unwrap(), want);
}

fn keys_error(e: Error) -> String {
    match e {
        Error::Keys(m) => m,
        other => panic!("expected a keys error, got {other:?}"),
    }
}

#[test]
fn keys_for_another_circuit_are_refused() {
    let c4 = circuit4();
    let other = random_circuit4(7);
    let dir = tempfile::tempdir().unwrap();
    let (ck, sk) = keys4();
    save_keys(dir.path(), &c4, ck, sk, fhe::FheMode::Exact).unwrap();
    let want = other.graph().digest().unwrap();
    let have = c4.graph().digest().unwrap();
    for e in [
        load_server_key(dir.path(), &other).unwrap_err(),
        load_client_key(dir.path(), &other).unwrap_err(),
        ServerKey::load(&dir.path().join("server.key"), &other).unwrap_err(),
        ClientKey::load(&dir.path().join("client.key"), &other).unwrap_err(),
    ] {
        let m = keys_error(e);
        assert!(m.contains("belongs to circuit"), "{m}");
        assert!(m.contains(&have[..16]) && m.contains(&want[..16]), "{m}");
        assert!(m.contains("generate keys for this circuit"), "{m}");
    }
    // In memory too: encrypting, evaluating or decrypting for another circuit.
    let x = vec![0, 0, 0, 0];
    assert!(keys_error(ck.encrypt(&other, &x).unwrap_err()).contains("belongs to circuit"));
    let enc = ck.encrypt(&c4, &[0, 0, 0]).unwrap();
    assert!(keys_error(sk.evaluate(&other, &enc).unwrap_err()).contains("belongs to circuit"));
    let sk_other = sk.rebind(&other).unwrap();
    assert!(keys_error(sk_other.evaluate(&other, &enc).unwrap_err()).contains("belongs to circuit"));
    let out = sk.evaluate(&c4, &enc).unwrap();
    assert!(keys_error(ck.decrypt(&other, &out).unwrap_err()).contains("belongs to circuit"));
    // Files of encrypted data carry the digest as well.
    let p = dir.path().join("in.ct");
    enc.save(&p).unwrap();
    assert!(
        keys_error(EncryptedInput::load(&p, &other).unwrap_err()).contains("belongs to circuit")
    );
    // A missing directory says how to make keys.
    let m = keys_error(load_server_key(&dir.path().join("nope"), &c4).unwrap_err());
    assert!(m.contains("generate keys for this circuit"), "{m}");
}

/// Rewrites a file's payload byte `at` (from the payload start) and, when `fix_checksum`,
/// the header's checksum so that the change reaches the deserializer.
fn tamper(path: &Path, at: usize, fix_checksum: bool) {
    use sha2::{Digest, Sha256};
    let mut bytes = std::fs::read(path).unwrap();
    let hlen = sqnn::cast::to_usize(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
    let start = 12 + hlen;
    bytes[start + at] ^= 0x5a;
    if fix_checksum {
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[12..start]).unwrap();
        let sum: String = Sha256::digest(&bytes[start..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        header["payload_sha256"] = serde_json::Value::String(sum);
        let h = serde_json::to_vec(&header).unwrap();
        assert_eq!(h.len(), hlen);
        bytes[12..start].copy_from_slice(&h);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupted_files_give_clear_errors() {
    let c = circuit4();
    let (ck, sk) = keys4();
    let src = tempfile::tempdir().unwrap();
    save_keys(src.path(), &c, ck, sk, fhe::FheMode::Exact).unwrap();
    let enc = ck.encrypt(&c, &[1, 2, 0]).unwrap();
    enc.save(&src.path().join("in.ct")).unwrap();
    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        for f in ["client.key", "server.key", "keys.json", "in.ct"] {
            std::fs::copy(src.path().join(f), d.path().join(f)).unwrap();
        }
        d
    };
    type Load = fn(&Path, &CheckedGraph) -> Result<(), Error>;
    let loads: [(&str, Load); 3] = [
        ("server.key", |p, c| ServerKey::load(p, c).map(|_| ())),
        ("client.key", |p, c| ClientKey::load(p, c).map(|_| ())),
        ("in.ct", |p, c| EncryptedInput::load(p, c).map(|_| ())),
    ];
    for (file, load) in loads {
        // A flipped bit: checksum mismatch.
        let d = fresh();
        let p = d.path().join(file);
        tamper(&p, 100, false);
        let m = keys_error(load(&p, &c).unwrap_err());
        assert!(m.contains("corrupted"), "{file}: {m}");
        // A flipped bit with a recomputed checksum, early in the payload (the serialization
        // header and dimensions): the deserializer or the dimension check refuses it.
        for at in (0usize..260).step_by(19) {
            let d = fresh();
            let p = d.path().join(file);
            tamper(&p, at, true);
            match load(&p, &c) {
                Err(Error::Keys(m)) => assert!(!m.is_empty()),
                Err(other) => panic!("{file} byte {at}: expected a keys error, got {other:?}"),
                // A flip in a value the format cannot check (a key coefficient) loads.
                Ok(()) => {}
            }
        }
        // Truncated.
        let d = fresh();
        let p = d.path().join(file);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let m = keys_error(load(&p, &c).unwrap_err());
        assert!(
            m.contains("corrupted") || m.contains("truncated"),
            "{file}: {m}"
        );
        // Not an sqnn file at all.
        std::fs::write(&p, b"hello, this is not a key").unwrap();
        assert!(keys_error(load(&p, &c).unwrap_err()).contains("not an sqnn"));
        std::fs::write(&p, b"").unwrap();
        assert!(keys_error(load(&p, &c).unwrap_err()).contains("corrupted"));
    }
    // The wrong kind of file.
    let d = fresh();
    let m = keys_error(ServerKey::load(&d.path().join("client.key"), &c).unwrap_err());
    assert!(m.contains("is a client key, not a server key"), "{m}");
    // A broken manifest.
    std::fs::write(d.path().join("keys.json"), "{").unwrap();
    let m = keys_error(load_server_key(d.path(), &c).unwrap_err());
    assert!(m.contains("manifest"), "{m}");
}

#[test]
fn a_circuit_too_wide_for_the_keys_is_refused() {
    let mut b = Builder::new("tfhe-test-wide", 3, 2, 6);
    let x0 = b.input(0, 3);
    let x1 = b.input(0, 3);
    let d = b.dot(0, &[(x0, 3), (x1, 3)], 0); // [0, 18]: 5 bits
    let c = b.finish(&[d]);
    let m = keys_error(keys4().0.rebind(&c).unwrap_err());
    assert!(m.contains("5-bit"), "{m}");
}

/// Keys and encrypted files remember their encoding (`space_bits`); data made with another
/// encoding, or a plan of another set, is refused with a clear error.
#[test]
fn keys_and_ciphertexts_carry_their_encoding() {
    let c = circuit5();
    let p5 = plan_on_set(&c, set(SET4), fhe::FheMode::Exact, -30.0, 2).unwrap();
    let b = backend_with(&c, &p5);
    assert_eq!(b.client().space_bits(), 5);
    let dir = tempfile::tempdir().unwrap();
    let m = save_keys(dir.path(), &c, b.client(), b.server(), p5.mode).unwrap();
    assert_eq!(m.space_bits, Some(5));
    let loaded = TfheBackend::load(dir.path(), &c).unwrap();
    assert_eq!(loaded.server().space_bits(), 5);
    let x = vec![1, 2, -1];
    let want = ClearBackend::default()
        .run(&c, std::slice::from_ref(&x))
        .unwrap();
    assert_eq!(loaded.run(&c, std::slice::from_ref(&x)).unwrap(), want);
    let p = dir.path().join("in.ct");
    b.client().encrypt(&c, &x).unwrap().save(&p).unwrap();
    let enc = EncryptedInput::load(&p, &c).unwrap();
    let out = loaded.server().evaluate(&c, &enc).unwrap();
    assert_eq!(loaded.client().decrypt(&c, &out).unwrap(), want[0]);
    // The 4-bit circuit encrypted in a 5-bit space, evaluated by a key of the 4-bit space.
    let c4 = circuit4();
    let p5 = plan_at_width(&c4, set(SET4), 5, fhe::FheMode::Exact, -30.0, 2);
    let (ck, sk) = keys4();
    let enc5 = ck
        .rebind_with(&c4, &p5)
        .unwrap()
        .encrypt(&c4, &[0, 1, 2])
        .unwrap();
    let m = keys_error(sk.evaluate(&c4, &enc5).unwrap_err());
    assert!(m.contains("5-bit ciphertext space"), "{m}");
    // A plan of another parameter set, or a space the set cannot read.
    let p2 = plan(&c4, SET2);
    assert!(keys_error(sk.rebind_with(&c4, &p2).unwrap_err()).contains("the plan uses"));
    let p12 = plan_at_width(&c4, set(SET4), 12, fhe::FheMode::Approximate, -30.0, 2);
    let m = keys_error(sk.rebind_with(&c4, &p12).unwrap_err());
    assert!(m.contains("12-bit ciphertext space does not fit"), "{m}");
}

#[test]
fn keys_and_ciphertexts_of_two_key_generations_are_not_mixed() {
    let c = circuit4();
    let (ck, sk) = keys4();
    let (ck2, sk2) = ClientKey::generate(&c, &plan(&c, SET4)).unwrap();
    assert!(ck.key_pair().is_some() && ck.key_pair() == sk.key_pair());
    assert!(ck2.key_pair() == sk2.key_pair() && ck2.key_pair() != ck.key_pair());
    let x = vec![-2, 3, 2];
    // An input of one pair is not evaluated with the other pair's server key...
    let enc = ck.encrypt(&c, &x).unwrap();
    assert_eq!(enc.key_pair(), ck.key_pair());
    let e = keys_error(sk2.evaluate(&c, &enc).unwrap_err());
    assert!(e.contains("key pair"), "{e}");
    // ... nor its output decrypted with the other pair's client key.
    let out = sk2.evaluate(&c, &ck2.encrypt(&c, &x).unwrap()).unwrap();
    assert_eq!(out.key_pair(), ck2.key_pair());
    let e = keys_error(ck.decrypt(&c, &out).unwrap_err());
    assert!(e.contains("key pair"), "{e}");
    assert!(TfheBackend::new(ck.clone(), sk2.clone()).is_err());
    // A key directory whose server.key comes from another generation is refused.
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    save_keys(d1.path(), &c, ck, sk, fhe::FheMode::Exact).unwrap();
    save_keys(d2.path(), &c, &ck2, &sk2, fhe::FheMode::Exact).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            let m = std::fs::metadata(d2.path().join(f)).unwrap();
            m.permissions().mode() & 0o777
        };
        assert_eq!(
            mode("client.key"),
            0o600,
            "the secret key is its owner's only"
        );
    }
    std::fs::copy(d2.path().join("server.key"), d1.path().join("server.key")).unwrap();
    let e = keys_error(load_server_key(d1.path(), &c).unwrap_err());
    assert!(e.contains("another key generation"), "{e}");
    assert!(TfheBackend::load(d1.path(), &c).is_err());
    assert!(load_client_key(d1.path(), &c).is_ok());
}

#[test]
fn keys_and_ciphertexts_round_trip_through_bytes() {
    let c = circuit4();
    let (ck, sk) = keys4();
    let bytes = sk.to_bytes().unwrap();
    let info = ObjectInfo::read(&bytes).unwrap();
    assert_eq!(info.kind, "server_key");
    assert_eq!(info.digest, c.graph().digest().unwrap());
    assert_eq!(info.key_pair.as_deref(), sk.key_pair());
    let server = ServerKey::from_bytes(&bytes, "the uploaded key", &c).unwrap();
    let x = vec![-2, 3, 2];
    let enc = ck.encrypt(&c, &x).unwrap().to_bytes().unwrap();
    let enc = EncryptedInput::from_bytes(&enc, "sample 0", &c).unwrap();
    let out = server.evaluate(&c, &enc).unwrap().to_bytes().unwrap();
    let out = EncryptedOutput::from_bytes(&out, "the response", &c).unwrap();
    let want = ClearBackend::default().run(&c, &[x]).unwrap();
    assert_eq!(ck.decrypt(&c, &out).unwrap(), want[0]);
    // Truncated, flipped or mislabelled bytes are refused with a message naming them.
    let e =
        keys_error(ServerKey::from_bytes(&bytes[..bytes.len() - 1], "the upload", &c).unwrap_err());
    assert!(e.contains("the upload"), "{e}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 1;
    let e = keys_error(ServerKey::from_bytes(&flipped, "the upload", &c).unwrap_err());
    assert!(e.contains("checksum"), "{e}");
    let e = keys_error(EncryptedInput::from_bytes(&bytes, "sample 0", &c).unwrap_err());
    assert!(
        e.contains("not a encrypted input") || e.contains("is a server key"),
        "{e}"
    );
    assert!(ObjectInfo::read(b"garbage").is_err());
}

/// A linear circuit: three inputs, two dots, no table.
fn linear_circuit() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-linear", 3, 2, 6);
    let x0 = b.input(-2, 1);
    let x1 = b.input(0, 3);
    let x2 = b.input(-1, 2);
    let o0 = b.dot(0, &[(x0, 3), (x1, -2), (x2, 1)], 5);
    let o1 = b.dot(0, &[(x0, -1), (x2, 3)], -4);
    b.finish(&[o0, o1])
}

#[test]
fn a_linear_circuit_gets_a_server_key_without_bootstrapping_key() {
    let lin = linear_circuit();
    assert_eq!(lin.report().pbs_count, 0);
    let plan = plan(&lin, SET4);
    assert_eq!(
        (plan.server_key_bytes, plan.compressed_server_key_bytes),
        (0, 0)
    );
    let (ck, sk) = ClientKey::generate(&lin, &plan).unwrap();
    assert!(!sk.can_bootstrap());
    assert_eq!(sk.memory_bytes(), 0);
    // Against a circuit with tables: the key holds tens of megabytes.
    assert!(keys4().1.can_bootstrap() && keys4().1.memory_bytes() > 10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let m = save_keys(dir.path(), &lin, &ck, &sk, fhe::FheMode::Approximate).unwrap();
    assert!(m.server_key_bytes < 4096, "{m:?}");
    // Loaded, it evaluates every input of the circuit as the clear backend does, bit for bit.
    let b = TfheBackend::load(dir.path(), &lin).unwrap();
    assert!(!b.server().can_bootstrap());
    let inputs: Vec<Vec<i64>> = (-2..=1)
        .flat_map(|a| (0..=3).flat_map(move |c| (-1..=2).map(move |d| vec![a, c, d])))
        .collect();
    assert_eq!(
        b.run(&lin, &inputs).unwrap(),
        ClearBackend::default().run(&lin, &inputs).unwrap()
    );
    // It cannot read a table: bound to a circuit with tables, it is refused with the fix.
    let c4 = circuit4();
    let e = keys_error(sk.rebind(&c4).unwrap_err());
    assert!(
        e.contains("no bootstrapping key") && e.contains("generate keys"),
        "{e}"
    );
    // Nor can its file pass for a key of such a circuit (its digest rewritten, the empty
    // payload's checksum still valid).
    let mut bytes = std::fs::read(dir.path().join("server.key")).unwrap();
    let (have, want) = (lin.graph().digest().unwrap(), c4.graph().digest().unwrap());
    let at = bytes
        .windows(have.len())
        .position(|w| w == have.as_bytes())
        .unwrap();
    bytes[at..at + want.len()].copy_from_slice(want.as_bytes());
    let e = keys_error(ServerKey::from_bytes(&bytes, "forged", &c4).unwrap_err());
    assert!(e.contains("no bootstrapping key"), "{e}");
}
