//! Networks and volumes are idempotent: ensure twice creates once, remove twice is fine.

mod common;

use std::collections::BTreeMap;

use berth_engine::{NetworkSpec, VolumeSpec};
use berth_test_support::{docker, docker_output, unique_name, Volume};
use common::{engine, Network};

#[tokio::test]
async fn networks_are_created_once_listed_by_label_and_removed_idempotently() {
    let engine = engine().await;
    let network = Network(unique_name("berth-net"));
    let marker = unique_name("marker");
    let spec = NetworkSpec {
        name: network.0.clone(),
        labels: BTreeMap::from([("berth.test".to_string(), marker.clone())]),
        attachable: true,
        ..Default::default()
    };
    assert!(engine.ensure_network(&spec).await.unwrap());
    assert!(!engine.ensure_network(&spec).await.unwrap());
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "--format",
            "{{.Attachable}}",
            &network.0
        ]),
        "true"
    );

    let listed = engine
        .list_networks(&[("berth.test", Some(&marker))])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, network.0);
    assert_eq!(listed[0].labels["berth.test"], marker);
    assert!(engine
        .list_networks(&[("berth.test", Some("other"))])
        .await
        .unwrap()
        .is_empty());

    engine.remove_network(&network.0).await.unwrap();
    assert!(!docker_output(&["network", "inspect", &network.0])
        .status
        .success());
    engine.remove_network(&network.0).await.unwrap();
}

#[tokio::test]
async fn volumes_are_created_once_listed_by_label_and_removed_idempotently() {
    let engine = engine().await;
    // The guard only cleans up; the volume itself is created by the engine code.
    let volume = Volume {
        name: unique_name("berth-vol"),
    };
    let marker = unique_name("marker");
    let spec = VolumeSpec {
        name: volume.name.clone(),
        labels: BTreeMap::from([("berth.test".to_string(), marker.clone())]),
        ..Default::default()
    };
    assert!(engine.ensure_volume(&spec).await.unwrap());
    assert!(!engine.ensure_volume(&spec).await.unwrap());

    let listed = engine
        .list_volumes(&[("berth.test", Some(&marker))])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, volume.name);
    assert_eq!(listed[0].driver, "local");
    assert!(engine
        .list_volumes(&[("berth.test", None)])
        .await
        .unwrap()
        .iter()
        .any(|v| v.name == volume.name));

    engine.remove_volume(&volume.name).await.unwrap();
    assert!(!docker_output(&["volume", "inspect", &volume.name])
        .status
        .success());
    engine.remove_volume(&volume.name).await.unwrap();
}
