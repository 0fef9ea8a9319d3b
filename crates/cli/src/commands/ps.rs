//! `berth ps`: the project's containers, as a table or one JSON object per line.

use super::session::{number_of, service_of, Session};
use super::CliError;
use crate::args::{ProjectArgs, PsArgs, TextFormat};
use crate::table::Table;

pub fn run(p: &ProjectArgs, a: &PsArgs) -> Result<(), CliError> {
    let s = Session::open(p)?;
    let list = s.containers(&a.services, a.all)?;
    match a.format {
        TextFormat::Json => {
            for c in &list {
                let ports: Vec<serde_json::Value> = c
                    .ports
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "URL": p.host_ip, "TargetPort": p.container_port,
                            "PublishedPort": p.host_port, "Protocol": p.protocol,
                        })
                    })
                    .collect();
                let row = serde_json::json!({
                    "ID": c.id, "Name": c.name, "Image": c.image, "Project": s.project(),
                    "Service": service_of(c), "Number": number_of(c), "State": c.state,
                    "Health": c.health.clone().unwrap_or_default(), "Status": c.status,
                    "ExitCode": c.exit_code.unwrap_or(0), "Publishers": ports,
                });
                println!("{row}");
            }
        }
        TextFormat::Text => {
            let mut table = Table::new(&["NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"]);
            for c in &list {
                let ports = c
                    .ports
                    .iter()
                    .map(|p| match p.host_port {
                        Some(h) => format!(
                            "{}:{h}->{}/{}",
                            p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                            p.container_port,
                            p.protocol
                        ),
                        None => format!("{}/{}", p.container_port, p.protocol),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                table.row(vec![
                    c.name.clone(),
                    c.image.clone(),
                    service_of(c).to_string(),
                    c.status.clone(),
                    ports,
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}
